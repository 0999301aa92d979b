"""The device registry's tables and migrations (component ``device``).

Tables are prefixed ``device_`` so the registry can share a database — one
SQLite file or one PostgreSQL schema — with authn; its versions live in
``device_schema_version``. Append-only: never edit a released migration.

* ``device_devices`` — one row per (subject, device): the latest match features,
  state (``known`` → ``bound`` → ``revoked``), whether the device id is a key
  thumbprint, and when it was first/last seen, bound, revoked, or changed SIM.
* ``device_sightings`` — which subjects used a device (by graph key) and when:
  the shared-device graph.
* ``device_audit`` — every binding change: who (customer or bank staff id),
  when, with what authentication, and why. Other processes poll it to drop
  cached bindings (`DeviceRegistry.changes_since`).
"""

from __future__ import annotations

from typing import Final

from storage import Migration, Migrations, bool_column

__all__ = ["MIGRATIONS"]

MIGRATIONS: Final = Migrations(
    "device",
    (
        Migration(
            1,
            "device registry, sightings and binding audit",
            (
                f"""CREATE TABLE device_devices (
                    subject TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    kind TEXT NOT NULL CHECK (kind IN ('web', 'mobile', 'unknown')),
                    label TEXT NOT NULL,
                    name TEXT NOT NULL DEFAULT '',
                    state TEXT NOT NULL CHECK (state IN ('known', 'bound', 'revoked')),
                    key_bound {bool_column("key_bound")},
                    signal_id TEXT,
                    graph_key TEXT,
                    features TEXT NOT NULL,
                    first_seen {{FLOAT}} NOT NULL,
                    last_seen {{FLOAT}} NOT NULL,
                    bound_at {{FLOAT}},
                    revoked_at {{FLOAT}},
                    sim_changed_at {{FLOAT}},
                    PRIMARY KEY (subject, device_id)
                ){{STRICT}}""",
                "CREATE INDEX device_devices_first_seen ON device_devices (subject, first_seen)",
                """CREATE TABLE device_sightings (
                    graph_key TEXT NOT NULL,
                    subject TEXT NOT NULL,
                    first_seen {FLOAT} NOT NULL,
                    last_seen {FLOAT} NOT NULL,
                    PRIMARY KEY (graph_key, subject)
                ){STRICT}""",
                "CREATE INDEX device_sightings_last_seen ON device_sightings (last_seen)",
                """CREATE TABLE device_audit (
                    audit_id TEXT PRIMARY KEY,
                    at {FLOAT} NOT NULL,
                    subject TEXT NOT NULL,
                    device_id TEXT NOT NULL,
                    action TEXT NOT NULL CHECK (action IN ('bind', 'rename', 'revoke')),
                    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('customer', 'staff')),
                    actor_id TEXT NOT NULL,
                    acr TEXT,
                    detail TEXT NOT NULL
                ){STRICT}""",
                "CREATE INDEX device_audit_at ON device_audit (at)",
                "CREATE INDEX device_audit_subject ON device_audit (subject, at)",
            ),
        ),
    ),
)
