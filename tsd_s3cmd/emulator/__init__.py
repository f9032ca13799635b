"""``tsd-s3cmd-emulator``: a local stand-in for TSD's auth API and S3 gateway.

The real TSD cannot be reached from a developer's machine or from CI, so the
emulator serves, on one port, the five auth endpoints of docs/tsd-api.md under
``/v1/`` and an S3 gateway at the root that enforces TSD's token rules before
handing the request to moto's S3 server, running in the same process.

Modules: ``identity`` (users, projects, keys and the JWTs), ``auth_api`` (the
auth endpoints), ``gateway`` (the S3 policy and the hand-over to moto),
``app`` (routing, the request log, faults and inspection), ``cli`` (the
command line, TLS and the server loop).
"""
