/* shelf: the bookshelf's aggregate (examples/bookshelf). RPC add_book(title, author) and
 * read_book(title) check a command against the shelf and emit `book.added` / `book.read` to the
 * retained stream `book.#`. Its state is nothing but those events, replayed from the stream's
 * beginning at start and kept current by them, so every instance holds the whole shelf. It must
 * never emit an event for a command it refused, nor refuse a title added before the request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <devnode.h>

#define STREAM "book.#"
#define SUBSCRIPTION "books"
#define TEXT_MAX 200          /* bytes of a title or an author */
#define CATCH_UP_TIMEOUT_MS 2000

/* One title on the shelf; the author is the one of its latest `book.added`. */
struct book {
    char *title;              /* owned */
    char *author;             /* owned */
    struct book *next;        /* the bucket's chain */
};

struct shelf {
    struct book **buckets;    /* owned; a power of two of them */
    size_t bucket_count;
    size_t book_count;
    uint64_t events;          /* events applied, replayed or live */
    int64_t last_offset;      /* of the newest event applied; -1 before any */
};

/* ---- the state: a set of titles --------------------------------------------------------- */

static size_t title_hash(const char *s)
{
    size_t h = 14695981039346656037ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct book *shelf_find(const struct shelf *sh, const char *title)
{
    if (!sh->bucket_count)
        return NULL;
    for (struct book *b = sh->buckets[title_hash(title) & (sh->bucket_count - 1)]; b; b = b->next)
        if (strcmp(b->title, title) == 0)
            return b;
    return NULL;
}

static int shelf_grow(struct shelf *sh)
{
    size_t count = sh->bucket_count ? sh->bucket_count * 2 : 64;
    struct book **buckets = calloc(count, sizeof *buckets);
    if (!buckets)
        return -1;
    for (size_t i = 0; i < sh->bucket_count; i++) {
        while (sh->buckets[i]) {
            struct book *b = sh->buckets[i];
            sh->buckets[i] = b->next;
            size_t k = title_hash(b->title) & (count - 1);
            b->next = buckets[k];
            buckets[k] = b;
        }
    }
    free(sh->buckets);
    sh->buckets = buckets;
    sh->bucket_count = count;
    return 0;
}

/* Records that `title` is on the shelf, by `author` (the latest add wins). 0 or -1 (memory). */
static int shelf_put(struct shelf *sh, const char *title, const char *author)
{
    struct book *b = shelf_find(sh, title);
    if (b) {
        char *copy = strdup(author);
        if (!copy)
            return -1;
        free(b->author);
        b->author = copy;
        return 0;
    }
    if (sh->book_count >= sh->bucket_count && shelf_grow(sh) < 0)
        return -1;
    b = calloc(1, sizeof *b);
    if (!b || !(b->title = strdup(title)) || !(b->author = strdup(author))) {
        if (b)
            free(b->title);
        free(b);
        return -1;
    }
    size_t k = title_hash(title) & (sh->bucket_count - 1);
    b->next = sh->buckets[k];
    sh->buckets[k] = b;
    sh->book_count++;
    return 0;
}

static void shelf_free(struct shelf *sh)
{
    for (size_t i = 0; i < sh->bucket_count; i++) {
        while (sh->buckets[i]) {
            struct book *b = sh->buckets[i];
            sh->buckets[i] = b->next;
            free(b->title);
            free(b->author);
            free(b);
        }
    }
    free(sh->buckets);
}

/* ---- events: the only way the state changes ------------------------------------------ */

static int on_book_event(const struct devnode_event *ev, void *ctx)
{
    struct shelf *sh = ctx;
    sh->events++;
    sh->last_offset = ev->offset;
    if (strcmp(ev->type, "book.added") != 0)
        return 0; /* book.read changes nothing the shelf checks */
    const char *title = json_string_value(json_object_get(ev->body, "title"));
    const char *author = json_string_value(json_object_get(ev->body, "author"));
    if (!title || !author) {
        /* Someone emitted it by hand: acked all the same, or it would come back forever. */
        devnode_log(ev->dn, DEVNODE_WARNING, "skipped book.added at offset %lld: no title or author",
                    (long long)ev->offset);
        return 0;
    }
    if (shelf_put(sh, title, author) < 0) {
        devnode_log(ev->dn, DEVNODE_ERROR, "out of memory at offset %lld", (long long)ev->offset);
        return -1; /* not applied: another try later */
    }
    return 0;
}

/* ---- commands -------------------------------------------------------------------------- */

/* A title or author: a string of 1-200 bytes, not only spaces, without control characters
 * (it goes into log lines). NULL when fine, else why not. */
static const char *check_text(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return "must be a string";
    size_t n = strlen(s);
    if (n > TEXT_MAX)
        return "must be at most 200 bytes";
    if (strspn(s, " ") == n)
        return "must not be empty";
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "must not hold control characters";
    return NULL;
}

static json_t *add_book(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    const json_t *title = json_object_get(args, "title"), *author = json_object_get(args, "author");
    const char *why = check_text(title);
    if (why)
        return devnode_error_set(err, "ValueError", "title %s", why);
    if ((why = check_text(author)))
        return devnode_error_set(err, "ValueError", "author %s", why);
    /* Adding a title that is already there adds another copy: no check against the state, so
     * two instances can take adds at once without a race (the latest author is kept). */
    json_t *body = json_pack("{s:O, s:O}", "title", title, "author", author);
    int64_t offset = -1;
    int rc = body ? devnode_emit_offset(dn, "book.added", body, 0, &offset) : DEVNODE_E_INVALID;
    json_decref(body);
    if (rc != 0)
        return devnode_error_set(err, "EmitError", "book.added was not kept: %s", devnode_last_error(dn));
    devnode_log(dn, DEVNODE_INFO, "Added '%s' by %s at offset %lld", json_string_value(title),
                json_string_value(author), (long long)offset);
    return json_pack("{s:O, s:O, s:I}", "title", title, "author", author, "offset", (json_int_t)offset);
}

/* Now, as UTC ISO 8601 with milliseconds: it goes into the event, so a replay sees the same. */
static void now_iso8601(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

static json_t *read_book(struct devnode *dn, const json_t *args, struct devnode_error *err, void *ctx)
{
    struct shelf *sh = ctx;
    const json_t *title = json_object_get(args, "title");
    const char *why = check_text(title);
    if (why)
        return devnode_error_set(err, "ValueError", "title %s", why);
    const char *t = json_string_value(title);
    const struct book *b = shelf_find(sh, t);
    if (!b) {
        /* Another instance may have taken the add a moment ago: the stream has it, our copy of
         * the state may not yet. Catch up with the stream as it is now, then decide. */
        if (devnode_catch_up(dn, SUBSCRIPTION, CATCH_UP_TIMEOUT_MS) != 0)
            return devnode_error_set(err, "Unavailable", "cannot check the shelf: %s", devnode_last_error(dn));
        b = shelf_find(sh, t);
    }
    if (!b) {
        devnode_log(dn, DEVNODE_WARNING, "read_book refused: no '%s' on the shelf", t);
        return devnode_error_set(err, "ValueError", "no book titled '%s' on the shelf", t);
    }
    char read_at[32];
    now_iso8601(read_at);
    json_t *body = json_pack("{s:s, s:s, s:s}", "title", b->title, "author", b->author, "read_at", read_at);
    int64_t offset = -1;
    int rc = body ? devnode_emit_offset(dn, "book.read", body, 0, &offset) : DEVNODE_E_INVALID;
    if (rc != 0) {
        json_decref(body);
        return devnode_error_set(err, "EmitError", "book.read was not kept: %s", devnode_last_error(dn));
    }
    devnode_log(dn, DEVNODE_INFO, "Read '%s' by %s at offset %lld", b->title, b->author, (long long)offset);
    json_object_set_new(body, "offset", json_integer(offset));
    return body;
}

int main(void)
{
    char err[256];
    struct devnode *dn = devnode_connect(err, sizeof err);
    if (!dn) {
        fprintf(stderr, "shelf: %s\n", err);
        return 2;
    }
    struct shelf sh = {.last_offset = -1};
    static const char *const add_params[] = {"title", "author", NULL};
    static const char *const read_params[] = {"title", NULL};
    devnode_add_method(dn, "add_book", add_params, "Puts a book on the shelf: emits book.added", add_book, &sh);
    devnode_add_method(dn, "read_book", read_params, "Reads a book of the shelf: emits book.read", read_book, &sh);
    /* A group of its own from the beginning: every instance keeps the whole shelf, rebuilt
     * before it registers (so no request meets a half-built shelf). */
    if (devnode_subscribe_stream(dn, SUBSCRIPTION, STREAM, NULL, "beginning", DEVNODE_BROADCAST | DEVNODE_CATCH_UP,
                                 on_book_event, &sh) != 0 ||
        devnode_start(dn) != 0) {
        fprintf(stderr, "shelf: %s\n", devnode_last_error(dn));
        devnode_close(dn);
        shelf_free(&sh);
        return 1;
    }
    devnode_log(dn, DEVNODE_INFO, "Shelf.%d rebuilt from %llu events (to offset %lld): %zu titles",
                devnode_instance(dn), (unsigned long long)sh.events, (long long)sh.last_offset, sh.book_count);
    int rc = devnode_run(dn);
    devnode_close(dn);
    shelf_free(&sh);
    return rc;
}
