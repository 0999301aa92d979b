"""ztgate's front door: the command line, the configuration file and logging.

Why a package of its own: these are the operator-facing shell that sits above
every layer (`crypto` ← `authn`, `device_fingerprint`, `policy` ← `gateway` ←
`edge_nodes`), so none of those layers may own them. Nothing below imports
from here except through values passed in (configuration dataclasses).
"""

__version__ = "0.1.0"
