from openshelf.paths import firmware_dir
from openshelf.site import load_site


def test_shipped_example_site_is_valid():
    site = load_site(firmware_dir() / "sites" / "example.yaml")
    assert site.demo is False
    assert site.reader("reader-gate-1").gate == "gate-1"
    assert site.camera("cam-1").gates == ["gate-1"]
    assert site.backend.gate_policy.unknown_tag == "log"
