/*
 * .cairn/config reader and writer (include/cairn/config.h).
 *
 * The file is held as its lines, each remembering which section it sits in
 * and, for `key = value` lines, the parsed key and value. Lookups scan the
 * lines (a config has tens of lines, read once per command), and a set
 * rewrites or inserts a single line so a user's comments and layout
 * survive every write.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cairn/config.h"
#include "util/buf.h"
#include "util/fs.h"

#define CONFIG_MAX_LINES 10000

enum line_kind { LINE_OTHER, LINE_SECTION, LINE_KEY };

struct config_line {
    enum line_kind kind;
    char *text;       /* the line as written, without its newline */
    char *section;    /* section the line belongs to (NULL before the first) */
    char *subsection; /* NULL when none */
    char *key, *value;
};

struct cairn_config {
    struct config_line *lines;
    size_t n, cap;
};

static void line_release(struct config_line *l)
{
    free(l->text);
    free(l->section);
    free(l->subsection);
    free(l->key);
    free(l->value);
    memset(l, 0, sizeof(*l));
}

void cairn_config_free(struct cairn_config *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        line_release(&c->lines[i]);
    free(c->lines);
    free(c);
}

static int name_char(int ch)
{
    return isalnum(ch) || ch == '.' || ch == '_' || ch == '-';
}

static int name_valid(const char *s)
{
    if (!s || !*s || strlen(s) > 128)
        return 0;
    for (; *s; s++)
        if (!name_char((unsigned char)*s))
            return 0;
    return 1;
}

static int subsection_valid(const char *s)
{
    if (!*s || strlen(s) > 256)
        return 0;
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || *s == '\n' || *s == '\r')
            return 0;
    return 1;
}

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static int rest_is_blank(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return !*p || *p == '#' || *p == ';';
}

/* Parse "[section]" or [section "sub"] starting at p (at '['). */
static int parse_section(struct config_line *l, const char *p, const char *name, size_t lineno)
{
    const char *s = ++p;
    while (name_char((unsigned char)*p))
        p++;
    if (p == s)
        return cairn_error_set(CAIRN_EINVALID, "%s:%zu: missing section name", name, lineno);
    if (!(l->section = dup_range(s, (size_t)(p - s))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (*p == ' ' || *p == '\t') {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '"')
            return cairn_error_set(CAIRN_EINVALID, "%s:%zu: expected '\"' after section name", name,
                                   lineno);
        s = ++p;
        while (*p && *p != '"' && *p != '\\')
            p++;
        if (*p != '"' || p == s)
            return cairn_error_set(CAIRN_EINVALID, "%s:%zu: bad subsection name", name, lineno);
        if (!(l->subsection = dup_range(s, (size_t)(p - s))))
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        p++;
    }
    if (*p != ']')
        return cairn_error_set(CAIRN_EINVALID, "%s:%zu: expected ']' to close the section", name,
                               lineno);
    if (!rest_is_blank(p + 1))
        return cairn_error_set(CAIRN_EINVALID, "%s:%zu: unexpected text after ']'", name, lineno);
    l->kind = LINE_SECTION;
    return 0;
}

/* Unquote a "..." value with \" and \\ escapes into a new string. */
static int parse_quoted(char **out, const char *p, const char *name, size_t lineno)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error = 0;
    for (p++; *p && *p != '"' && !error; p++) {
        if (*p == '\\') {
            p++;
            if (*p != '"' && *p != '\\') {
                error = cairn_error_set(CAIRN_EINVALID, "%s:%zu: bad escape in quoted value", name,
                                        lineno);
                break;
            }
        }
        error = cairn_buf_putc(&b, *p);
    }
    if (!error && *p != '"')
        error = cairn_error_set(CAIRN_EINVALID, "%s:%zu: unterminated quoted value", name, lineno);
    if (!error && !rest_is_blank(p + 1))
        error = cairn_error_set(CAIRN_EINVALID, "%s:%zu: unexpected text after quoted value", name,
                                lineno);
    if (!error && !(*out = b.ptr ? cairn_buf_detach(&b, NULL) : strdup("")))
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    cairn_buf_release(&b);
    return error;
}

static int parse_key(struct config_line *l, const char *p, const char *name, size_t lineno)
{
    const char *s = p, *e;
    while (name_char((unsigned char)*p))
        p++;
    if (p == s)
        return cairn_error_set(CAIRN_EINVALID, "%s:%zu: expected 'key = value'", name, lineno);
    if (!l->section)
        return cairn_error_set(CAIRN_EINVALID, "%s:%zu: key outside a section", name, lineno);
    if (!(l->key = dup_range(s, (size_t)(p - s))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != '=')
        return cairn_error_set(CAIRN_EINVALID, "%s:%zu: expected '=' after '%s'", name, lineno,
                               l->key);
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    l->kind = LINE_KEY;
    if (*p == '"')
        return parse_quoted(&l->value, p, name, lineno);
    e = p + strlen(p);
    while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (!(l->value = dup_range(p, (size_t)(e - p))))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    return 0;
}

static int push_line(struct cairn_config *c, size_t at, struct config_line *l)
{
    if (c->n >= CONFIG_MAX_LINES)
        return cairn_error_set(CAIRN_ENOMEM, "config has more than %d lines", CONFIG_MAX_LINES);
    if (CAIRN_ARRAY_GROW(c->lines, c->cap, c->n) < 0)
        return CAIRN_ENOMEM;
    memmove(&c->lines[at + 1], &c->lines[at], (c->n - at) * sizeof(*l));
    c->lines[at] = *l;
    c->n++;
    return 0;
}

static int copy_section(struct config_line *l, const char *section, const char *subsection)
{
    if (section && !(l->section = strdup(section)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    if (subsection && !(l->subsection = strdup(subsection)))
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    return 0;
}

int cairn_config_parse(struct cairn_config **out, const char *name, const char *data, size_t len)
{
    struct cairn_config *c = calloc(1, sizeof(*c));
    const char *section = NULL, *subsection = NULL;
    size_t pos = 0, lineno = 0;
    int error = 0;

    if (!c)
        return cairn_error_set(CAIRN_ENOMEM, "out of memory");
    while (pos < len && !error) {
        struct config_line l;
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        const char *p;

        memset(&l, 0, sizeof(l));
        lineno++;
        if (memchr(data + pos, '\0', n)) {
            error = cairn_error_set(CAIRN_EINVALID, "%s:%zu: NUL byte in config", name, lineno);
            break;
        }
        if (!(l.text = dup_range(data + pos, n > 0 && data[pos + n - 1] == '\r' ? n - 1 : n))) {
            error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
            break;
        }
        pos += n + (nl ? 1 : 0);
        for (p = l.text; *p == ' ' || *p == '\t'; p++)
            ;
        if (*p == '[')
            error = parse_section(&l, p, name, lineno);
        else if (!(error = copy_section(&l, section, subsection)) && *p && *p != '#' && *p != ';')
            error = parse_key(&l, p, name, lineno);
        if (!error)
            error = push_line(c, c->n, &l);
        if (error < 0) {
            line_release(&l);
            break;
        }
        section = c->lines[c->n - 1].section;
        subsection = c->lines[c->n - 1].subsection;
    }
    if (error < 0) {
        cairn_config_free(c);
        return error;
    }
    *out = c;
    return 0;
}

int cairn_config_load(struct cairn_config **out, const char *path)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error;

    cairn_buf_init(&b, CAIRN_CONFIG_MAX_BYTES);
    error = cairn_fs_read_file(&b, path, CAIRN_CONFIG_MAX_BYTES);
    if (error == CAIRN_ENOTFOUND) {
        cairn_error_clear();
        error = cairn_config_parse(out, path, "", 0);
    } else if (error >= 0) {
        error = cairn_config_parse(out, path, b.ptr ? b.ptr : "", b.len);
    }
    cairn_buf_release(&b);
    return error;
}

static int same_section(const struct config_line *l, const char *section, const char *subsection)
{
    if (!l->section || strcasecmp(l->section, section))
        return 0;
    if (!subsection || !l->subsection)
        return !subsection && !l->subsection;
    return !strcmp(l->subsection, subsection);
}

const char *cairn_config_get(const struct cairn_config *c, const char *section,
                             const char *subsection, const char *key)
{
    const char *v = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const struct config_line *l = &c->lines[i];
        if (l->kind == LINE_KEY && same_section(l, section, subsection) && !strcasecmp(l->key, key))
            v = l->value;
    }
    return v;
}

/* "\tkey = value", quoting the value when blanks or quotes would be lost. */
static int format_kv(char **out, const char *key, const char *value)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    size_t n = strlen(value);
    int quote = !n || value[0] == ' ' || value[0] == '\t' || value[0] == '"' ||
                value[n - 1] == ' ' || value[n - 1] == '\t';
    int error = cairn_buf_printf(&b, "\t%s = %s", key, quote ? "\"" : "");
    for (const char *p = value; *p && !error && quote; p++) {
        if (*p == '"' || *p == '\\')
            error = cairn_buf_putc(&b, '\\');
        if (!error)
            error = cairn_buf_putc(&b, *p);
    }
    if (!error && !quote)
        error = cairn_buf_puts(&b, value);
    if (!error && quote)
        error = cairn_buf_putc(&b, '"');
    if (!error)
        *out = cairn_buf_detach(&b, NULL);
    cairn_buf_release(&b);
    return error;
}

int cairn_config_set(struct cairn_config *c, const char *section, const char *subsection,
                     const char *key, const char *value)
{
    struct config_line l;
    size_t at = c->n, last_key = (size_t)-1, last_in = (size_t)-1;
    int error = 0;

    memset(&l, 0, sizeof(l));
    if (!name_valid(section))
        return cairn_error_set(CAIRN_EINVALID, "invalid config section '%s'", section);
    if (subsection && !subsection_valid(subsection))
        return cairn_error_set(CAIRN_EINVALID, "invalid config subsection '%s'", subsection);
    if (!name_valid(key))
        return cairn_error_set(CAIRN_EINVALID, "invalid config key '%s'", key);
    if (strpbrk(value, "\r\n"))
        return cairn_error_set(CAIRN_EINVALID, "config value for '%s' contains a newline", key);
    for (size_t i = 0; i < c->n; i++) {
        const struct config_line *x = &c->lines[i];
        if (!same_section(x, section, subsection) || x->kind == LINE_OTHER)
            continue;
        last_in = i; /* new keys go after the last setting, before comments that follow */
        if (x->kind == LINE_KEY && !strcasecmp(x->key, key))
            last_key = i;
    }
    if (last_key != (size_t)-1) {
        struct config_line *x = &c->lines[last_key];
        char *text = NULL, *v = strdup(value);
        if (!v || format_kv(&text, x->key, value) < 0) {
            free(v);
            return cairn_error_set(CAIRN_ENOMEM, "out of memory");
        }
        free(x->text);
        free(x->value);
        x->text = text;
        x->value = v;
        return 0;
    }
    if (last_in == (size_t)-1) {
        struct cairn_buf b = CAIRN_BUF_INIT;
        error = subsection ? cairn_buf_printf(&b, "[%s \"%s\"]", section, subsection)
                           : cairn_buf_printf(&b, "[%s]", section);
        if (!error)
            l.text = cairn_buf_detach(&b, NULL);
        cairn_buf_release(&b);
        l.kind = LINE_SECTION;
        if (error < 0 || (error = copy_section(&l, section, subsection)) < 0 ||
            (error = push_line(c, c->n, &l)) < 0)
            goto done;
        memset(&l, 0, sizeof(l));
        last_in = c->n - 1;
    }
    at = last_in + 1;
    l.kind = LINE_KEY;
    if ((error = copy_section(&l, c->lines[last_in].section, c->lines[last_in].subsection)) < 0 ||
        (error = format_kv(&l.text, key, value)) < 0)
        goto done;
    if (!(l.key = strdup(key)) || !(l.value = strdup(value))) {
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
        goto done;
    }
    if ((error = push_line(c, at, &l)) < 0)
        goto done;
    memset(&l, 0, sizeof(l));
done:
    line_release(&l);
    return error;
}

int cairn_config_format(char **out, const struct cairn_config *c)
{
    struct cairn_buf b = CAIRN_BUF_INIT;
    int error = 0;
    for (size_t i = 0; i < c->n && !error; i++)
        if (!(error = cairn_buf_puts(&b, c->lines[i].text)))
            error = cairn_buf_putc(&b, '\n');
    if (!error && !(*out = b.ptr ? cairn_buf_detach(&b, NULL) : strdup("")))
        error = cairn_error_set(CAIRN_ENOMEM, "out of memory");
    cairn_buf_release(&b);
    return error;
}

int cairn_config_write(const struct cairn_config *c, const char *path)
{
    char *text = NULL;
    int error;
    if ((error = cairn_config_format(&text, c)) < 0)
        return error;
    error = cairn_fs_write_atomic(path, text, strlen(text), 0644);
    free(text);
    return error;
}
