/* The agent's command decoder (lib/command.c, what coord-agent's agent/commands.c
 * runs on every queued command).  Properties: a decoded command has valid names
 * (id, instance), a known type, a version exactly where one is required or given,
 * a phase only for migrate; and it survives command_encode() and a second
 * command_decode() unchanged, with the same encoding again. */
#include <errno.h>
#include <stdbool.h>

#include "command.h"
#include "strutil.h"
#include "tests/fuzz/fuzz.h"

static bool same_opt(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_command(const struct command *a, const struct command *b) {
        return strcmp(a->id, b->id) == 0 && a->type == b->type && same_opt(a->instance, b->instance) &&
               same_opt(a->version, b->version) && same_opt(a->deployment, b->deployment) &&
               same_opt(a->phase, b->phase) && a->created_at_ms == b->created_at_ms;
}

static void check_valid(const struct command *c) {
        FUZZ_CHECK(c->id && name_is_valid(c->id), "invalid id");
        FUZZ_CHECK(c->type >= 0 && c->type < _COMMAND_TYPE_MAX, "type %d", (int) c->type);
        FUZZ_CHECK(!c->instance || name_is_valid(c->instance), "invalid instance");
        FUZZ_CHECK(!command_type_needs_version(c->type) || c->version, "%s without a version",
                   command_type_to_string(c->type));
        FUZZ_CHECK(!c->version || version_is_valid(c->version), "invalid version");
        FUZZ_CHECK(!c->phase || (c->type == COMMAND_MIGRATE && command_phase_is_valid(c->phase)), "phase '%s' on %s",
                   c->phase, command_type_to_string(c->type));
}

static void check_roundtrip(const struct command *c) {
        char *json = command_encode(c), *again, err[256] = "";
        struct command *d = NULL;

        FUZZ_CHECK(json, "no encoding");
        FUZZ_CHECK(command_decode(json, strlen(json), &d, err, sizeof err) == 0, "'%s' does not decode: %s", json,
                   err);
        FUZZ_CHECK(same_command(c, d), "'%s' decodes to another command", json);
        again = command_encode(d);
        FUZZ_CHECK(again && strcmp(json, again) == 0, "'%s' encodes again as '%s'", json, again);
        free(again);
        free(json);
        command_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct command *c = NULL;
        char err[256] = "";
        int r = command_decode((const char *) data, size, &c, err, sizeof err);

        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL && err[0] && !c, "failure %d without a message, or with a command", r);
                return 0;
        }
        check_valid(c);
        check_roundtrip(c);
        command_free(c);
        return 0;
}
