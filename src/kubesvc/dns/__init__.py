"""Cluster DNS: names for Services and pods, answered from a list+watch cache.

The shape follows CoreDNS's kubernetes plugin: ``watch`` turns API objects
into slim ``records`` held in an ``index``; ``parse`` (name → request) and
``answer`` (request + index → sections and rcode) are pure; ``wire`` is the
message format and its policies; ``resolver`` joins them with ``forward``
(upstream resolvers); ``server`` carries UDP and TCP; ``run`` assembles it.
"""
