-- Changing people: organizations and accounts are created, and roles, activity and passwords changed,
-- only through these functions (db/people.py calls them). Each one checks in the database that the
-- acting user (inkwell.user_id, 0040) is an active admin and writes its audit entry in the same
-- transaction, so neither the check nor the entry can be skipped, from the console or from psql.
-- inkwell_console has no INSERT or UPDATE privilege on inkwell.users or inkwell.organizations (0041).
--
-- The one exception is the very first account: while inkwell.users is empty, an organization and
-- an admin may be created without an acting admin (db/people.py, ensure_first_admin, run by the
-- run command before anyone can sign in).
--
-- Refusals raise SQLSTATE 42501 (insufficient_privilege) with a message for people; db/people.py
-- turns them into ActionRefused.

CREATE FUNCTION inkwell.require_admin(p_what text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    IF inkwell.acting_role() IS DISTINCT FROM 'admin' THEN
        RAISE EXCEPTION 'Only admins can %.', p_what USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;

-- True while no account exists; then locks the users table until the end of the transaction, so
-- two first-admin creations at once cannot both see it empty.
CREATE FUNCTION inkwell.is_first_account() RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    LOCK TABLE inkwell.users IN SHARE ROW EXCLUSIVE MODE;
    RETURN NOT EXISTS (SELECT 1 FROM inkwell.users);
END;
$$;

-- Roles and activity may change only while an active admin remains; takes the admins' row locks so
-- two admins demoting each other at once cannot both succeed.
CREATE FUNCTION inkwell.require_another_admin(p_user_id bigint, p_what text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM 1 FROM inkwell.users WHERE role = 'admin' AND active ORDER BY id FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM inkwell.users WHERE role = 'admin' AND active AND id <> p_user_id) THEN
        RAISE EXCEPTION 'Cannot %: it would leave no active admin. Make another account admin first.', p_what
            USING ERRCODE = 'insufficient_privilege';
    END IF;
END;
$$;

CREATE FUNCTION inkwell.create_organization(p_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    new_id bigint;
BEGIN
    IF NOT inkwell.is_first_account() THEN
        PERFORM inkwell.require_admin('create organizations');
    END IF;
    INSERT INTO inkwell.organizations (name) VALUES (btrim(p_name)) RETURNING id INTO new_id;
    PERFORM inkwell.audit('organization.created', 'organization', new_id::text,
                          jsonb_build_object('name', btrim(p_name)));
    RETURN new_id;
END;
$$;

CREATE FUNCTION inkwell.create_user(
    p_username text, p_display_name text, p_role text, p_organization_id bigint, p_password_hash text,
    p_oidc_issuer text DEFAULT NULL, p_oidc_subject text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    new_id bigint;
BEGIN
    IF inkwell.is_first_account() THEN
        IF p_role <> 'admin' THEN
            RAISE EXCEPTION 'The first account must be an admin.' USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSE
        PERFORM inkwell.require_admin('create accounts');
    END IF;
    INSERT INTO inkwell.users (username, display_name, role, organization_id, password_hash, oidc_issuer, oidc_subject)
    VALUES (p_username, p_display_name, p_role, p_organization_id, p_password_hash, p_oidc_issuer, p_oidc_subject)
    RETURNING id INTO new_id;
    PERFORM inkwell.audit('user.created', 'user', new_id::text,
                          jsonb_build_object('username', p_username, 'role', p_role,
                                             'organization_id', p_organization_id,
                                             'sign_in', CASE WHEN p_password_hash IS NULL THEN 'identity provider'
                                                             ELSE 'password' END));
    RETURN new_id;
END;
$$;

-- Returns false when the user does not exist.
CREATE FUNCTION inkwell.set_user_role(p_user_id bigint, p_role text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    old_role text;
BEGIN
    PERFORM inkwell.require_admin('change roles');
    SELECT role INTO old_role FROM inkwell.users WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF old_role = p_role THEN
        RETURN true;
    END IF;
    IF old_role = 'admin' THEN
        PERFORM inkwell.require_another_admin(p_user_id, 'take the admin role away');
    END IF;
    UPDATE inkwell.users SET role = p_role, updated_at = now() WHERE id = p_user_id;
    PERFORM inkwell.audit('user.role_changed', 'user', p_user_id::text,
                          jsonb_build_object('from', old_role, 'to', p_role));
    RETURN true;
END;
$$;

CREATE FUNCTION inkwell.set_user_active(p_user_id bigint, p_active boolean) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    old_active boolean;
    user_role text;
BEGIN
    PERFORM inkwell.require_admin('activate or deactivate accounts');
    SELECT active, role INTO old_active, user_role FROM inkwell.users WHERE id = p_user_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF old_active = p_active THEN
        RETURN true;
    END IF;
    IF NOT p_active AND user_role = 'admin' THEN
        PERFORM inkwell.require_another_admin(p_user_id, 'deactivate this admin');
    END IF;
    UPDATE inkwell.users SET active = p_active, updated_at = now() WHERE id = p_user_id;
    PERFORM inkwell.audit(CASE WHEN p_active THEN 'user.activated' ELSE 'user.deactivated' END,
                          'user', p_user_id::text, '{}'::jsonb);
    RETURN true;
END;
$$;

-- The hash is made by db/people.py (argon2); neither it nor the password is written to the audit log.
CREATE FUNCTION inkwell.set_user_password(p_user_id bigint, p_password_hash text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM inkwell.require_admin('set passwords');
    UPDATE inkwell.users SET password_hash = p_password_hash, updated_at = now() WHERE id = p_user_id;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM inkwell.audit('user.password_set', 'user', p_user_id::text, '{}'::jsonb);
    RETURN true;
END;
$$;

REVOKE EXECUTE ON FUNCTION
    inkwell.require_admin(text),
    inkwell.is_first_account(),
    inkwell.require_another_admin(bigint, text),
    inkwell.create_organization(text),
    inkwell.create_user(text, text, text, bigint, text, text, text),
    inkwell.set_user_role(bigint, text),
    inkwell.set_user_active(bigint, boolean),
    inkwell.set_user_password(bigint, text)
FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    inkwell.create_organization(text),
    inkwell.create_user(text, text, text, bigint, text, text, text),
    inkwell.set_user_role(bigint, text),
    inkwell.set_user_active(bigint, boolean),
    inkwell.set_user_password(bigint, text)
TO inkwell_console;
