/* schema: walks the key table (keys.c) into a JSON Schema, draft-07 (see schema.h). Every
 * row becomes a property with its doc as description, its limits and its default, so the
 * editor completes and checks what the loader reads, and a new row shows up by itself. */
#include "config/schema.h"

#include <stdio.h>
#include <string.h>

#include "config/keys.h"

/* A value the loader interpolates before it checks it: the editor cannot know its result. */
#define REF_PATTERN "\\$\\([A-Za-z_][A-Za-z0-9_]*\\.[A-Za-z0-9_.-]+\\)"

static json_t *section_schema(const struct config_section *sec, bool list_form);

static json_t *ref_string(const char *also_pattern)
{
    char pattern[256];
    snprintf(pattern, sizeof pattern, "%s%s%s", also_pattern ? also_pattern : "", also_pattern ? "|" : "",
             REF_PATTERN);
    return json_pack("{s:s, s:s}", "type", "string", "pattern", pattern);
}

/* a or b; an `a` that is already a bare anyOf takes b as one more choice. */
static json_t *any_of(json_t *a, json_t *b)
{
    json_t *choices = json_object_get(a, "anyOf");
    if (choices && json_object_size(a) == 1) {
        json_array_append_new(choices, b);
        return a;
    }
    return json_pack("{s:[o,o]}", "anyOf", a, b);
}

static json_t *choices_enum(const char *const *choices)
{
    json_t *list = json_array();
    for (size_t i = 0; choices[i]; i++) {
        json_array_append_new(list, json_string(choices[i]));
        if (strcmp(choices[i], "true") == 0) {
            json_array_append_new(list, json_true());  /* YAML's `true` arrives as a boolean */
        } else if (strcmp(choices[i], "false") == 0) {
            json_array_append_new(list, json_false());
        }
    }
    return json_pack("{s:o}", "enum", list);
}

/* The shape of a row's value, without null, description or default. */
static json_t *value_schema(const struct config_key *row)
{
    switch (row->kind) {
    case KEY_INT:
        return any_of(json_pack("{s:s, s:I, s:I}", "type", "integer", "minimum", (json_int_t)row->min, "maximum",
                                (json_int_t)row->max),
                      ref_string("^[+-]?[0-9]+$"));
    case KEY_DURATION:
        return any_of(json_pack("{s:s, s:i, s:f}", "type", "number", "minimum", 0, "maximum", row->max / 1000.0),
                      ref_string("^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ms|s)?$"));
    case KEY_STRING:
        return json_pack("{s:[s,s]}", "type", "string", "number");
    case KEY_ENUM:
        return any_of(choices_enum(row->choices), ref_string(NULL));
    case KEY_LIST:
        return json_pack("{s:s, s:{s:s}}", "type", "array", "items", "type", "string");
    case KEY_MAP: {
        if (!(row->flags & KEY_NAMED)) {
            json_t *map = section_schema(row->section, false);
            return row->choices ? any_of(choices_enum(row->choices), map) : map;
        }
        json_t *item = row->section ? section_schema(row->section, false)
                                    : json_pack("{s:[s,s,s,s]}", "type", "string", "number", "boolean", "null");
        if (row->flags & KEY_EMPTY_ITEMS) {
            item = any_of(item, json_pack("{s:s}", "type", "null"));
        }
        if (row->choices) {
            item = any_of(item, any_of(choices_enum(row->choices), json_pack("{s:s}", "type", "null")));
        }
        json_t *map = json_pack("{s:s, s:o}", "type", "object", "additionalProperties", item);
        if (row->flags & KEY_OR_NAMES) {
            return any_of(map, json_pack("{s:s, s:{s:s}}", "type", "array", "items", "type", "string"));
        }
        if (row->flags & KEY_OR_LIST) {
            json_t *list = json_pack("{s:s, s:o}", "type", "array", "items", section_schema(row->section, true));
            return any_of(map, list);
        }
        return map;
    }
    case KEY_IGNORED:
    default:
        return json_object();  /* anything */
    }
}

static json_t *row_schema(const struct config_key *row)
{
    json_t *s = value_schema(row);
    if (row->kind != KEY_IGNORED && !(row->flags & KEY_NULL_IS_VALUE)) {
        s = any_of(s, json_pack("{s:s}", "type", "null"));  /* `key:` keeps the default */
    }
    char doc[512];
    if (row->default_text) {
        snprintf(doc, sizeof doc, "%s (default: %s)", row->doc, row->default_text);
    } else {
        snprintf(doc, sizeof doc, "%s", row->doc);
    }
    json_object_set_new(s, "description", json_string(doc));
    if (row->kind == KEY_INT && row->default_text) {
        json_object_set_new(s, "default", json_integer(row->def));
    } else if ((row->kind == KEY_ENUM || row->kind == KEY_DURATION) && row->default_text) {
        json_object_set_new(s, "default", json_string(row->default_text));
    }
    return s;
}

static json_t *section_schema(const struct config_section *sec, bool list_form)
{
    json_t *props = json_object(), *required = json_array();
    for (size_t i = 0; i < sec->count; i++) {
        const struct config_key *row = &sec->keys[i];
        if ((row->flags & KEY_LIST_ONLY) && !list_form) {
            continue;
        }
        json_object_set_new(props, row->name, row_schema(row));
        if (row->flags & KEY_REQUIRED) {
            json_array_append_new(required, json_string(row->name));
        }
    }
    json_t *s = json_pack("{s:s, s:o, s:b}", "type", "object", "properties", props, "additionalProperties", 0);
    if (json_array_size(required)) {
        json_object_set_new(s, "required", required);
    } else {
        json_decref(required);
    }
    return s;
}

json_t *config_schema_json(void)
{
    json_t *top = section_schema(&config_top_section, false);
    json_t *root = json_pack("{s:s, s:s, s:s}", "$schema", "http://json-schema.org/draft-07/schema#", "title",
                             ".lymph.yml", "description",
                             "devnode's node config (lymph's format plus devnode's keys); see docs/config.md");
    json_object_update(root, top);
    json_decref(top);
    /* An empty file is a valid config with no services. */
    json_object_set_new(root, "type", json_pack("[s,s]", "object", "null"));
    return root;
}
