"""The embedded store and the demo: SeaweedFS as a child process on 127.0.0.1
(``serve --local``, ``demo``) and the demo's whole round trip.

May import the server, the transfer engine, signing and the core; never the command line
or typer/rich.
"""
