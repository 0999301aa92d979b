-- authn store schema version 1 with sample rows, as written by ztgate at commit 782870b
-- (pg_dump 15 --inserts; psql meta-commands removed, schema name replaced by __SCHEMA__).

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

CREATE SCHEMA __SCHEMA__;

SET default_tablespace = '';

SET default_table_access_method = heap;

CREATE TABLE __SCHEMA__.challenges (
    challenge_id text NOT NULL,
    purpose text NOT NULL,
    challenge bytea NOT NULL,
    subject text,
    expires_at double precision NOT NULL,
    data text NOT NULL
);

CREATE TABLE __SCHEMA__.clients (
    client_id text NOT NULL,
    name text NOT NULL,
    auth_method text NOT NULL,
    jwks text NOT NULL,
    tls_subject_dn text,
    tls_cert_sha256 text,
    scopes text NOT NULL,
    created_at double precision NOT NULL,
    disabled integer DEFAULT 0 NOT NULL,
    CONSTRAINT clients_auth_method_check CHECK ((auth_method = ANY (ARRAY['private_key_jwt'::text, 'tls_client_auth'::text, 'self_signed_tls_client_auth'::text]))),
    CONSTRAINT clients_disabled_check CHECK ((disabled = ANY (ARRAY[0, 1])))
);

CREATE TABLE __SCHEMA__.credentials (
    credential_id bytea NOT NULL,
    subject text NOT NULL,
    public_key bytea NOT NULL,
    sign_count bigint NOT NULL,
    transports text NOT NULL,
    aaguid text NOT NULL,
    attestation_format text NOT NULL,
    backup_eligible integer DEFAULT 0 NOT NULL,
    backed_up integer DEFAULT 0 NOT NULL,
    created_at double precision NOT NULL,
    last_used_at double precision,
    flagged text,
    name text NOT NULL,
    CONSTRAINT credentials_backed_up_check CHECK ((backed_up = ANY (ARRAY[0, 1]))),
    CONSTRAINT credentials_backup_eligible_check CHECK ((backup_eligible = ANY (ARRAY[0, 1])))
);

CREATE TABLE __SCHEMA__.failures (
    key text NOT NULL,
    at double precision NOT NULL,
    expires_at double precision NOT NULL
);

CREATE TABLE __SCHEMA__.nonces (
    scope text NOT NULL,
    value text NOT NULL,
    expires_at double precision NOT NULL
);

CREATE TABLE __SCHEMA__.passwords (
    subject text NOT NULL,
    encoded_hash text NOT NULL
);

CREATE TABLE __SCHEMA__.refresh (
    token_digest bytea NOT NULL,
    family_id text NOT NULL,
    subject text NOT NULL,
    client_id text NOT NULL,
    claims text NOT NULL,
    issued_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    used_at double precision,
    revoked integer DEFAULT 0 NOT NULL,
    use_count bigint DEFAULT 0 NOT NULL,
    CONSTRAINT refresh_revoked_check CHECK ((revoked = ANY (ARRAY[0, 1])))
);

CREATE TABLE __SCHEMA__.revocations (
    jti text NOT NULL,
    family_id text,
    revoked_at double precision NOT NULL,
    expires_at double precision NOT NULL
);

CREATE TABLE __SCHEMA__.schema_version (
    version integer NOT NULL,
    description text NOT NULL,
    applied_at double precision NOT NULL
);

CREATE TABLE __SCHEMA__.totp (
    subject text NOT NULL,
    sealed_seed bytea NOT NULL,
    algorithm text NOT NULL,
    digits integer NOT NULL,
    period integer NOT NULL,
    confirmed integer DEFAULT 0 NOT NULL,
    last_step bigint NOT NULL,
    CONSTRAINT totp_algorithm_check CHECK ((algorithm = ANY (ARRAY['SHA1'::text, 'SHA256'::text, 'SHA512'::text]))),
    CONSTRAINT totp_confirmed_check CHECK ((confirmed = ANY (ARRAY[0, 1])))
);

CREATE TABLE __SCHEMA__.users (
    subject text NOT NULL,
    username text NOT NULL,
    display_name text NOT NULL,
    kind text NOT NULL,
    created_at double precision NOT NULL,
    disabled integer DEFAULT 0 NOT NULL,
    CONSTRAINT users_disabled_check CHECK ((disabled = ANY (ARRAY[0, 1]))),
    CONSTRAINT users_kind_check CHECK ((kind = ANY (ARRAY['customer'::text, 'staff'::text])))
);

INSERT INTO __SCHEMA__.credentials VALUES ('\x016372656400', 'u-h3mlxqh7l4xlhjchnlzmhd4csq', '\xa50102032600a50102032600a50102032600a50102032600a50102032600a50102032600a50102032600a50102032600', 7, '["internal", "hybrid"]', '00000000-0000-0000-0000-000000000000', 'none', 1, 0, 1700000000.1234567, NULL, NULL, 'phone');

INSERT INTO __SCHEMA__.passwords VALUES ('u-h3mlxqh7l4xlhjchnlzmhd4csq', '$pbkdf2-sm3$i=600000$c2FsdA$aGFzaA');

INSERT INTO __SCHEMA__.refresh VALUES ('\x00646967657374', 'fam-1', 'u-h3mlxqh7l4xlhjchnlzmhd4csq', 'mobile-app', '{"acr": "urn:ztgate:acr:mfa"}', 1700000000.1234567, 1700086400.1234567, NULL, 0, 0);

INSERT INTO __SCHEMA__.revocations VALUES ('jti-legacy', NULL, 1795438708.259675, 2700000000.123457);

INSERT INTO __SCHEMA__.schema_version VALUES (1, 'initial authn schema', 1795438708.2481928);

INSERT INTO __SCHEMA__.totp VALUES ('u-h3mlxqh7l4xlhjchnlzmhd4csq', '\x007365616c6564ff007365616c6564ff007365616c6564ff007365616c6564ff', 'SHA256', 8, 30, 1, 56666666);

INSERT INTO __SCHEMA__.users VALUES ('u-h3mlxqh7l4xlhjchnlzmhd4csq', 'legacy-alice', 'Alice Ünicode', 'customer', 1795438708.2506955, 0);

ALTER TABLE ONLY __SCHEMA__.challenges
    ADD CONSTRAINT challenges_pkey PRIMARY KEY (challenge_id);

ALTER TABLE ONLY __SCHEMA__.clients
    ADD CONSTRAINT clients_pkey PRIMARY KEY (client_id);

ALTER TABLE ONLY __SCHEMA__.credentials
    ADD CONSTRAINT credentials_pkey PRIMARY KEY (credential_id);

ALTER TABLE ONLY __SCHEMA__.nonces
    ADD CONSTRAINT nonces_pkey PRIMARY KEY (scope, value);

ALTER TABLE ONLY __SCHEMA__.passwords
    ADD CONSTRAINT passwords_pkey PRIMARY KEY (subject);

ALTER TABLE ONLY __SCHEMA__.refresh
    ADD CONSTRAINT refresh_pkey PRIMARY KEY (token_digest);

ALTER TABLE ONLY __SCHEMA__.revocations
    ADD CONSTRAINT revocations_pkey PRIMARY KEY (jti);

ALTER TABLE ONLY __SCHEMA__.schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (version);

ALTER TABLE ONLY __SCHEMA__.totp
    ADD CONSTRAINT totp_pkey PRIMARY KEY (subject);

ALTER TABLE ONLY __SCHEMA__.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (subject);

CREATE INDEX challenges_expires_at ON __SCHEMA__.challenges USING btree (expires_at);

CREATE INDEX credentials_subject ON __SCHEMA__.credentials USING btree (subject);

CREATE INDEX failures_expires_at ON __SCHEMA__.failures USING btree (expires_at);

CREATE INDEX failures_key_at ON __SCHEMA__.failures USING btree (key, at);

CREATE INDEX nonces_expires_at ON __SCHEMA__.nonces USING btree (expires_at);

CREATE INDEX refresh_family ON __SCHEMA__.refresh USING btree (family_id);

CREATE INDEX revocations_expires_at ON __SCHEMA__.revocations USING btree (expires_at);

CREATE INDEX revocations_revoked_at ON __SCHEMA__.revocations USING btree (revoked_at);

CREATE UNIQUE INDEX users_username ON __SCHEMA__.users USING btree (username);

ALTER TABLE ONLY __SCHEMA__.credentials
    ADD CONSTRAINT credentials_subject_fkey FOREIGN KEY (subject) REFERENCES __SCHEMA__.users(subject) ON DELETE CASCADE;

ALTER TABLE ONLY __SCHEMA__.passwords
    ADD CONSTRAINT passwords_subject_fkey FOREIGN KEY (subject) REFERENCES __SCHEMA__.users(subject) ON DELETE CASCADE;

ALTER TABLE ONLY __SCHEMA__.totp
    ADD CONSTRAINT totp_subject_fkey FOREIGN KEY (subject) REFERENCES __SCHEMA__.users(subject) ON DELETE CASCADE;

