"""Circulation: patrons, items, loans, holds, fines and the rules that govern them.

Two implementations sit behind one :class:`~backend.circulation.interface.Circulation`
protocol: the standalone one (:mod:`backend.circulation.service` over a store) and
the SIP2 one (:mod:`backend.sip2.circulation`) that asks the library system.
The decisions themselves are pure functions in :mod:`backend.circulation.decide`.
See docs/circulation.md.
"""
