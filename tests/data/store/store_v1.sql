-- An operational store made by Archer's hand-written migration runner (schema_version 1),
-- before Alembic; tests/test_store.py upgrades it. Made with sqlite3's iterdump.
BEGIN TRANSACTION;
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
INSERT INTO "schema_version" VALUES(1,'audiences: saved audience definitions with who and when','2026-12-05 08:34:42.329119');
COMMIT;
