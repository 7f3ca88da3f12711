"""`openshelf import` as a technician runs it: into the site's database, twice, diacritics intact."""

from __future__ import annotations

import sqlite3

import pytest
import yaml

from openshelf.demo import demo_site
from openshelf.paths import firmware_dir
from tests.helpers import Proc, free_port

pytestmark = pytest.mark.e2e


def _run(tmp_path, name, *args):
    proc = Proc(name, list(args), tmp_path / f"{name}.log").start(wait_ready=False)
    proc.popen.wait(120)
    out = proc.stdout
    return proc.stop(), out, proc.log_text()


def test_import_csv_then_marc_into_the_site_database_and_reimport_updates(tmp_path):
    site = demo_site(broker_url=f"mqtt://127.0.0.1:{free_port()}", http_port=free_port(),
                     modbus_port=free_port(), reader_port=free_port())
    site_path = tmp_path / "site.yaml"
    site_path.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    samples = firmware_dir() / "samples"

    code, out, log = _run(tmp_path, "csv1", "import", "csv", str(samples / "items.csv"), "--kind", "items",
                          "--site", str(site_path))
    assert code == 0, out + log
    code, out, log = _run(tmp_path, "marc", "import", "marc", str(samples / "catalog-vi.xml"), "--site", str(site_path))
    assert code in (0, 1), out + log  # 1 = some records skipped, each reported
    code, out, log = _run(tmp_path, "csv2", "import", "csv", str(samples / "items.csv"), "--kind", "items",
                          "--site", str(site_path))
    assert code == 0, out + log

    with sqlite3.connect(tmp_path / "openshelf.db") as db:
        titles = dict(db.execute("SELECT item_id, title FROM items").fetchall())
        count = db.execute("SELECT COUNT(*) FROM items WHERE item_id = 'TN.000201'").fetchone()[0]
    assert titles["TN.000201"] == "Mắt biếc"
    assert count == 1, "re-importing updates instead of duplicating"
    assert any("ệ" in title or "ữ" in title or "ắ" in title for title in titles.values())
