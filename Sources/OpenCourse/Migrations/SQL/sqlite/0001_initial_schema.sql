-- opencourse initial schema (SQLite). UUIDs are stored as text, timestamps as Unix seconds (REAL).
CREATE TABLE roles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    description TEXT
);
--> statement-breakpoint
INSERT INTO roles (name, description) VALUES
    ('student',    'Can enroll in courses'),
    ('instructor', 'Can publish and manage own courses'),
    ('admin',      'Can manage everything');
--> statement-breakpoint
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE CHECK (length(email) <= 255),
    password_hash TEXT NOT NULL,
    name          TEXT CHECK (name IS NULL OR length(name) <= 100),
    role          TEXT NOT NULL DEFAULT 'student' REFERENCES roles (name),
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
);
--> statement-breakpoint
CREATE INDEX users_role_idx ON users (role);
--> statement-breakpoint
CREATE TABLE courses (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description TEXT,
    created_by  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
--> statement-breakpoint
CREATE INDEX courses_created_by_idx ON courses (created_by, created_at, id);
--> statement-breakpoint
CREATE INDEX courses_catalog_idx ON courses (created_at, id);
--> statement-breakpoint
CREATE TABLE enrollments (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    course_id   TEXT NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    enrolled_at REAL NOT NULL,
    UNIQUE (user_id, course_id)
);
--> statement-breakpoint
CREATE INDEX enrollments_user_id_idx ON enrollments (user_id, enrolled_at, id);
--> statement-breakpoint
CREATE INDEX enrollments_course_id_idx ON enrollments (course_id, enrolled_at, id);
