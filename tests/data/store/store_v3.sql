-- An operational store made by Archer's hand-written migration runner (schema_version 3),
-- before Alembic; tests/test_store.py upgrades it. Made with sqlite3's iterdump.
BEGIN TRANSACTION;
CREATE TABLE api_keys (
	id INTEGER NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	key_hash VARCHAR(64) NOT NULL, 
	prefix VARCHAR(16) NOT NULL, 
	created_by VARCHAR(100) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_used_at DATETIME, 
	revoked_at DATETIME, 
	CONSTRAINT pk_api_keys PRIMARY KEY (id), 
	CONSTRAINT uq_api_keys_name UNIQUE (name), 
	CONSTRAINT uq_api_keys_key_hash UNIQUE (key_hash)
);
INSERT INTO "api_keys" VALUES(1,'ci','0f273dd372959e61d402bda223a896cdf57ce429d40743ac168f24aa2307d2a3','ak_D1Ddl','li','2026-11-01 09:30:00.000000',NULL,NULL);
CREATE TABLE audiences (
	id INTEGER NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	"query" TEXT NOT NULL, 
	description TEXT, 
	created_by VARCHAR(100) NOT NULL, 
	created_at DATETIME NOT NULL, 
	updated_by VARCHAR(100) NOT NULL, 
	updated_at DATETIME NOT NULL, 
	CONSTRAINT pk_audiences PRIMARY KEY (id), 
	CONSTRAINT uq_audiences_name UNIQUE (name)
);
INSERT INTO "audiences" VALUES(1,'高价值客户','monetary > 1000','big spenders','li','2026-11-01 09:30:00.000000','li','2026-11-01 09:30:00.000000');
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	description VARCHAR(200) NOT NULL, 
	applied_at DATETIME NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO "schema_version" VALUES(1,'audiences: saved audience definitions with who and when','2026-12-05 08:34:43.456770');
INSERT INTO "schema_version" VALUES(2,'tracking: sources with hashed write keys, the inbox, message ids','2026-12-05 08:34:43.461759');
INSERT INTO "schema_version" VALUES(3,'users and API keys: operator accounts, hashed REST API keys','2026-12-05 08:34:43.467067');
CREATE TABLE tracking_inbox (
	seq INTEGER NOT NULL, 
	source_id INTEGER NOT NULL, 
	message_id VARCHAR(200) NOT NULL, 
	received_at DATETIME NOT NULL, 
	body TEXT NOT NULL, 
	CONSTRAINT pk_tracking_inbox PRIMARY KEY (seq)
);
INSERT INTO "tracking_inbox" VALUES(1,1,'m-1','2026-11-01 09:30:00.000000','{"type":"track","messageId":"m-1"}');
CREATE TABLE tracking_message_ids (
	source_id INTEGER NOT NULL, 
	message_id VARCHAR(200) NOT NULL, 
	received_at DATETIME NOT NULL, 
	CONSTRAINT pk_tracking_message_ids PRIMARY KEY (source_id, message_id)
)
 WITHOUT ROWID

;
INSERT INTO "tracking_message_ids" VALUES(1,'m-1','2026-11-01 09:30:00.000000');
CREATE TABLE tracking_sources (
	id INTEGER NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	key_hash VARCHAR(64) NOT NULL, 
	key_hint VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, 
	CONSTRAINT pk_tracking_sources PRIMARY KEY (id), 
	CONSTRAINT uq_tracking_sources_name UNIQUE (name), 
	CONSTRAINT uq_tracking_sources_key_hash UNIQUE (key_hash)
);
INSERT INTO "tracking_sources" VALUES(1,'shop-web','10105920d2e6045d23caf881839725ba35f7bf9aa8f28743da0c74b66bd16a73','wk_IfQt','2026-11-01 09:30:00.000000',NULL);
CREATE TABLE users (
	id INTEGER NOT NULL, 
	username VARCHAR(100) NOT NULL, 
	password_hash VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	last_login_at DATETIME, 
	CONSTRAINT pk_users PRIMARY KEY (id), 
	CONSTRAINT uq_users_username UNIQUE (username)
);
INSERT INTO "users" VALUES(1,'li','$argon2id$v=19$m=65536,t=3,p=4$BhXU5FYxcDSwqYfgj65jwA$j58jrfB0ZwDeSfK2lHrlnzrKpCOGaElI79J6krk3Os0','2026-11-01 09:30:00.000000',NULL);
CREATE INDEX ix_tracking_message_ids_received_at ON tracking_message_ids (received_at);
COMMIT;
