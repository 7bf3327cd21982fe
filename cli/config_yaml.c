// cli/config_yaml: a YAML config file (TRL's `--config run.yaml`) turned into JSON text, so
// one code path (flags_expand_config) reads both. Debian's libyaml does the parsing; this file
// only maps its events: mappings to objects, sequences to arrays, and scalars by YAML 1.1's
// core rules as PyYAML (which TRL's HfArgumentParser uses) reads them: plain true/false/yes/no/
// on/off are booleans, null/~/empty are null, plain numbers stay numbers, anything else and
// every quoted scalar is a string. Anchors, aliases and tags are refused, not guessed.
#include "cli/config_yaml.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

static int ieq_any(const char *s, const char *const *words) {
    for (; *words; words++) if (!strcasecmp(s, *words)) return 1;
    return 0;
}

// A plain (unquoted) scalar that is a YAML number: an optional sign, digits with at most one
// '.', an optional exponent; also .inf/.nan are left as strings (flags refuse them anyway).
static int is_number(const char *s) {
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    int digits = 0, dot = 0;
    for (; *p; p++) {
        if (isdigit((unsigned char)*p)) digits++;
        else if (*p == '.' && !dot) dot = 1;
        else break;
    }
    if (!digits) return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!isdigit((unsigned char)*p)) return 0;
        while (isdigit((unsigned char)*p)) p++;
    }
    return *p == 0;
}

static void put_scalar(sbuf *out, const yaml_event_t *e) {
    const char *v = (const char *)e->data.scalar.value;
    size_t n = e->data.scalar.length;
    static const char *const yes[] = {"true", "yes", "on", NULL}, *const no[] = {"false", "no", "off", NULL},
                             *const nul[] = {"null", "~", NULL};
    if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (n == 0 || ieq_any(v, nul)) { sbuf_puts(out, "null"); return; }
        if (ieq_any(v, yes)) { sbuf_puts(out, "true"); return; }
        if (ieq_any(v, no)) { sbuf_puts(out, "false"); return; }
        if (is_number(v)) {
            // JSON wants a digit before '.', and no leading '+'
            if (*v == '+') v++, n--;
            if (*v == '.') sbuf_puts(out, "0");
            else if (v[0] == '-' && v[1] == '.') { sbuf_puts(out, "-0"); v++, n--; }
            sbuf_put(out, v, n);
            if (v[n - 1] == '.') sbuf_puts(out, "0");
            return;
        }
    }
    sbuf_json_str(out, v, n);
}

int config_yaml_to_json(const char *path, sbuf *out, tm_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return tm_fail(err, "%s: cannot open: %s", path, strerror(errno));
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) { fclose(f); return tm_fail(err, "%s: out of memory", path); }
    yaml_parser_set_input_file(&p, f);
    // per open container: 'm' mapping (expecting a key), 'v' mapping (expecting a value), 's' sequence
    char stack[64];
    int depth = 0, first[64] = {0}, rc = 0, done = 0, docs = 0;
    while (!done && !rc) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            rc = tm_fail(err, "%s:%zu: YAML: %s", path, p.problem_mark.line + 1, p.problem ? p.problem : "syntax error");
            break;
        }
        size_t line = e.start_mark.line + 1;
        int is_value = e.type == YAML_SCALAR_EVENT || e.type == YAML_MAPPING_START_EVENT || e.type == YAML_SEQUENCE_START_EVENT ||
                       e.type == YAML_ALIAS_EVENT;
        if (is_value && depth > 0) {
            // a separator, and the ':' after a key
            char *top = &stack[depth - 1];
            if (*top == 'm' || *top == 's') {
                if (first[depth - 1]) sbuf_puts(out, ", ");
                first[depth - 1] = 1;
            }
            if (*top == 'm' && e.type != YAML_SCALAR_EVENT) rc = tm_fail(err, "%s:%zu: YAML: a key must be plain text", path, line);
        }
        if (!rc) switch (e.type) {
        case YAML_STREAM_END_EVENT: done = 1; break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) rc = tm_fail(err, "%s:%zu: YAML: one document expected, found a second ('---')", path, line);
            break;
        case YAML_ALIAS_EVENT: rc = tm_fail(err, "%s:%zu: YAML: aliases (*name) are not supported in a config", path, line); break;
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth == (int)sizeof stack) { rc = tm_fail(err, "%s:%zu: YAML: nested too deep", path, line); break; }
            if (depth == 0 && e.type != YAML_MAPPING_START_EVENT) {
                rc = tm_fail(err, "%s:%zu: YAML: the config must be a mapping of flag names to values", path, line);
                break;
            }
            if (depth > 0 && stack[depth - 1] == 'v') stack[depth - 1] = 'm';
            stack[depth] = e.type == YAML_MAPPING_START_EVENT ? 'm' : 's';
            first[depth++] = 0;
            sbuf_puts(out, e.type == YAML_MAPPING_START_EVENT ? "{" : "[");
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            sbuf_puts(out, e.type == YAML_MAPPING_END_EVENT ? "}" : "]");
            break;
        case YAML_SCALAR_EVENT:
            if (e.data.scalar.anchor) { rc = tm_fail(err, "%s:%zu: YAML: anchors (&name) are not supported in a config", path, line); break; }
            if (depth > 0 && stack[depth - 1] == 'm') {  // a key
                sbuf_json_str(out, (const char *)e.data.scalar.value, e.data.scalar.length);
                sbuf_puts(out, ": ");
                stack[depth - 1] = 'v';
            } else {
                if (depth == 0) { rc = tm_fail(err, "%s:%zu: YAML: the config must be a mapping of flag names to values", path, line); break; }
                put_scalar(out, &e);
                if (stack[depth - 1] == 'v') stack[depth - 1] = 'm';
            }
            break;
        default: break;
        }
        // a container that ends as a mapping's value hands the turn back to the keys
        if (!rc && (e.type == YAML_MAPPING_END_EVENT || e.type == YAML_SEQUENCE_END_EVENT) && depth > 0 && stack[depth - 1] == 'v')
            stack[depth - 1] = 'm';
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&p);
    fclose(f);
    if (!rc && docs == 0) sbuf_puts(out, "{}");  // an empty file: no settings
    if (!rc && sbuf_check(out, err)) rc = -1;
    return rc;
}
