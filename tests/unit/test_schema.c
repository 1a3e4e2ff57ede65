/* Unit tests for config/keys.c and config/schema.c: the key table against what is generated
 * from it. Every row the loader accepts is a property of `devnode schema` at its place (list-only
 * keys only in the list form), and the unknown-key lists follow the rows' order. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "config/keys.h"
#include "config/schema.h"

/* The properties of the object among node and its anyOf alternatives, or NULL. */
static json_t *object_properties(json_t *node)
{
    json_t *p = json_object_get(node, "properties");
    if (p)
        return p;
    json_t *alt;
    size_t i;
    json_array_foreach(json_object_get(node, "anyOf"), i, alt) {
        if ((p = object_properties(alt)))
            return p;
    }
    return NULL;
}

/* What a map of NAME -> settings holds per NAME (list_form: a list's items), or NULL. */
static json_t *named_item(json_t *node, bool list_form)
{
    json_t *item = json_object_get(node, list_form ? "items" : "additionalProperties");
    if (json_is_object(item))
        return item;
    json_t *alt;
    size_t i;
    json_array_foreach(json_object_get(node, "anyOf"), i, alt) {
        if ((item = named_item(alt, list_form)))
            return item;
    }
    return NULL;
}

static void check_section(const struct config_section *sec, json_t *node, bool list_form, const char *where)
{
    json_t *props = object_properties(node);
    assert_non_null(props);
    size_t expected = 0;
    for (size_t i = 0; i < sec->count; i++) {
        const struct config_key *row = &sec->keys[i];
        json_t *prop = json_object_get(props, row->name);
        if ((row->flags & KEY_LIST_ONLY) && !list_form) {
            if (prop)
                fail_msg("%s%s: a list-only key in the map form", where, row->name);
            continue;
        }
        expected++;
        if (!prop)
            fail_msg("%s%s: in the table, not in the schema", where, row->name);
        assert_non_null(row->doc);
        assert_non_null(json_object_get(prop, "description"));
        if (!row->section)
            continue;
        char sub[256];
        snprintf(sub, sizeof sub, "%s%s.", where, row->name);
        if (row->flags & KEY_NAMED) {
            check_section(row->section, named_item(prop, false), false, sub);
            if (row->flags & KEY_OR_LIST)
                check_section(row->section, named_item(prop, true), true, sub);
        } else {
            check_section(row->section, prop, false, sub);
        }
    }
    if (json_object_size(props) != expected)
        fail_msg("%s: the schema has %zu keys, the table %zu", where, json_object_size(props), expected);
}

static void test_every_row_is_in_the_schema(void **state)
{
    json_t *schema = config_schema_json();
    assert_string_equal(json_string_value(json_object_get(schema, "$schema")),
                        "http://json-schema.org/draft-07/schema#");
    check_section(&config_top_section, schema, false, "");
    json_decref(schema);
}

static void test_key_lists_follow_the_table(void **state)
{
    char names[512];
    keys_names(&config_top_section, false, names, sizeof names);
    assert_string_equal(names, "instances, sockets, logs, streams, port_base, env_file, backends"); /* lymph's keys left out */
    const struct config_key *instances = &config_top_section.keys[0], *sockets = &config_top_section.keys[1];
    keys_names(instances->section, false, names, sizeof names);
    assert_string_equal(names, "command, numprocesses, env, env_file, cwd, restart, max_restarts, restart_window, "
                               "stop_signal, stop_timeout, sockets, ready, depends_on, disabled, watch, ignore, "
                               "watch_debounce, stdin, tty, live");
    keys_names(sockets->section, false, names, sizeof names);
    assert_string_equal(names, "host, port, path");
    keys_names(sockets->section, true, names, sizeof names);
    assert_string_equal(names, "host, port, path, name");
    keys_names(sockets->section, false, names, 8);  /* cut short, still terminated */
    assert_int_equal(strlen(names), 7);
}

/* Rows with a generic loader store into a field of their size: a wrong `size` would write
 * past it, so every one is 4 or 8 bytes, and the enum/int/duration ones are numbers. */
static void check_sizes(const struct config_section *sec)
{
    for (size_t i = 0; i < sec->count; i++) {
        const struct config_key *row = &sec->keys[i];
        if (!row->load && (row->kind == KEY_INT || row->kind == KEY_DURATION || row->kind == KEY_ENUM))
            assert_true(row->size == 4 || row->size == 8);
        if (!row->load && row->kind == KEY_STRING)
            assert_int_equal(row->size, sizeof(char *));
        if (row->kind == KEY_ENUM)
            assert_non_null(row->choices);
        if (row->section)
            check_sizes(row->section);
    }
}

static void test_generic_rows_have_a_field(void **state)
{
    check_sizes(&config_top_section);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row_is_in_the_schema),
        cmocka_unit_test(test_key_lists_follow_the_table),
        cmocka_unit_test(test_generic_rows_have_a_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
