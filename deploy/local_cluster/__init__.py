"""deploy/local_cluster: the documented topology on 127.0.0.1 (cluster.py)."""
