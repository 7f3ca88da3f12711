"""SIP2 (3M Standard Interchange Protocol 2.00): codec, client, server, circulation over SIP2.

* :mod:`backend.sip2.messages` — every supported message as a typed model.
* :mod:`backend.sip2.codec` — frames, AY/AZ error detection, charsets, terminators.
* :mod:`backend.sip2.client` — a blocking client with TLS, timeouts, retry and reconnect.
* :mod:`backend.sip2.server` — a threaded server over any ``Circulation``.
* :mod:`backend.sip2.circulation` — ``Sip2Circulation``: the ``Circulation`` interface over a library system.
* :mod:`backend.sip2.offline` — offline transactions, Koha ``.koc`` export and replay.

See docs/sip2.md.
"""
