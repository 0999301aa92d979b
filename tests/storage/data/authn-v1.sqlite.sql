-- authn store schema version 1 with sample rows, as written by ztgate at commit 782870b (sqlite3 .dump).
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_version ( version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL) STRICT;
INSERT INTO schema_version VALUES(1,'initial authn schema',1795438704.3495483398);
CREATE TABLE users (
                subject TEXT PRIMARY KEY,
                username TEXT NOT NULL,
                display_name TEXT NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('customer', 'staff')),
                created_at REAL NOT NULL,
                disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
            ) STRICT;
INSERT INTO users VALUES('u-qiqteofuiujnwkwcl5qjbg5sky','legacy-alice','Alice Ünicode','customer',1795438704.3516862392,0);
CREATE TABLE passwords (
                subject TEXT PRIMARY KEY REFERENCES users (subject) ON DELETE CASCADE,
                encoded_hash TEXT NOT NULL
            ) STRICT;
INSERT INTO passwords VALUES('u-qiqteofuiujnwkwcl5qjbg5sky','$pbkdf2-sm3$i=600000$c2FsdA$aGFzaA');
CREATE TABLE totp (
                subject TEXT PRIMARY KEY REFERENCES users (subject) ON DELETE CASCADE,
                sealed_seed BLOB NOT NULL,
                algorithm TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
                digits INTEGER NOT NULL,
                period INTEGER NOT NULL,
                confirmed INTEGER NOT NULL DEFAULT 0 CHECK (confirmed IN (0, 1)),
                last_step INTEGER NOT NULL
            ) STRICT;
INSERT INTO totp VALUES('u-qiqteofuiujnwkwcl5qjbg5sky',X'007365616c6564ff007365616c6564ff007365616c6564ff007365616c6564ff','SHA256',8,30,1,56666666);
CREATE TABLE credentials (
                credential_id BLOB PRIMARY KEY,
                subject TEXT NOT NULL REFERENCES users (subject) ON DELETE CASCADE,
                public_key BLOB NOT NULL,
                sign_count INTEGER NOT NULL,
                transports TEXT NOT NULL,
                aaguid TEXT NOT NULL,
                attestation_format TEXT NOT NULL,
                backup_eligible INTEGER NOT NULL DEFAULT 0 CHECK (backup_eligible IN (0, 1)),
                backed_up INTEGER NOT NULL DEFAULT 0 CHECK (backed_up IN (0, 1)),
                created_at REAL NOT NULL,
                last_used_at REAL,
                flagged TEXT,
                name TEXT NOT NULL
            ) STRICT;
INSERT INTO credentials VALUES(X'016372656400','u-qiqteofuiujnwkwcl5qjbg5sky',X'a50102032600a50102032600a50102032600a50102032600a50102032600a50102032600a50102032600a50102032600',7,'["internal", "hybrid"]','00000000-0000-0000-0000-000000000000','none',1,0,1700000000.1234567165,NULL,NULL,'phone');
CREATE TABLE challenges (
                challenge_id TEXT PRIMARY KEY,
                purpose TEXT NOT NULL,
                challenge BLOB NOT NULL,
                subject TEXT,
                expires_at REAL NOT NULL,
                data TEXT NOT NULL
            ) STRICT;
CREATE TABLE nonces (
                scope TEXT NOT NULL,
                value TEXT NOT NULL,
                expires_at REAL NOT NULL,
                PRIMARY KEY (scope, value)
            ) STRICT;
CREATE TABLE refresh (
                token_digest BLOB PRIMARY KEY,
                family_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                client_id TEXT NOT NULL,
                claims TEXT NOT NULL,
                issued_at REAL NOT NULL,
                expires_at REAL NOT NULL,
                used_at REAL,
                revoked INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
                use_count INTEGER NOT NULL DEFAULT 0
            ) STRICT;
INSERT INTO refresh VALUES(X'00646967657374','fam-1','u-qiqteofuiujnwkwcl5qjbg5sky','mobile-app','{"acr": "urn:ztgate:acr:mfa"}',1700000000.1234567165,1700086400.1234567164,NULL,0,0);
CREATE TABLE revocations (
                jti TEXT PRIMARY KEY,
                family_id TEXT,
                revoked_at REAL NOT NULL,
                expires_at REAL NOT NULL
            ) STRICT;
INSERT INTO revocations VALUES('jti-legacy',NULL,1795438704.3550107479,2700000000.1234569549);
CREATE TABLE clients (
                client_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                auth_method TEXT NOT NULL CHECK (auth_method IN
                    ('private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth')),
                jwks TEXT NOT NULL,
                tls_subject_dn TEXT,
                tls_cert_sha256 TEXT,
                scopes TEXT NOT NULL,
                created_at REAL NOT NULL,
                disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
            ) STRICT;
CREATE TABLE failures (
                key TEXT NOT NULL,
                at REAL NOT NULL,
                expires_at REAL NOT NULL
            ) STRICT;
CREATE UNIQUE INDEX users_username ON users (username);
CREATE INDEX credentials_subject ON credentials (subject);
CREATE INDEX challenges_expires_at ON challenges (expires_at);
CREATE INDEX nonces_expires_at ON nonces (expires_at);
CREATE INDEX refresh_family ON refresh (family_id);
CREATE INDEX revocations_revoked_at ON revocations (revoked_at);
CREATE INDEX revocations_expires_at ON revocations (expires_at);
CREATE INDEX failures_key_at ON failures (key, at);
CREATE INDEX failures_expires_at ON failures (expires_at);
COMMIT;
