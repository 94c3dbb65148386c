"""The one HTTP stack every call of s3sign goes through: the transport's rules (CA
bundles, proxies, ``no_proxy``, timeouts) and the kept-alive connections that enforce
limits and deadlines on every answer.

Part of the core: imports only ``s3sign.errors`` and the standard library.
"""
