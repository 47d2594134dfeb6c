"""LoadBalancer addresses for bare metal: pools, allocation, announcement.

``pools`` parses address pools (``--lb-pool``, IPAddressPool objects);
``allocator`` is the pure bookkeeping (assign, allocate, unassign, sharing);
``service`` reads the parts of a Service that matter; ``election`` picks the
announcing node; ``announce`` owns the host routes (kernel mode) and the fast
agent liveness probe; ``controller`` ties them to the API as a client.
"""
