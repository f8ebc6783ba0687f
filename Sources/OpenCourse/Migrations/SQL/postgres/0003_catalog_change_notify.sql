-- Tell every instance when a course row changes, so their catalog caches drop it. NOTIFY is
-- delivered on commit, and the trigger fires whoever made the change.
CREATE FUNCTION opencourse_catalog_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('opencourse_catalog', COALESCE(NEW.id, OLD.id)::text);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER courses_catalog_notify
    AFTER INSERT OR UPDATE OR DELETE ON courses
    FOR EACH ROW EXECUTE FUNCTION opencourse_catalog_notify();
