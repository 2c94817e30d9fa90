/* See depstore.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "depstore.h"
#include "jsonutil.h"
#include "parse-util.h"
#include "rollout.h"
#include "strutil.h"

const char depstore_read_script[] =
        "return {redis.call('HGET', KEYS[1], 'doc'), redis.call('HGET', KEYS[1], 'rev'),"
        " redis.call('HGET', KEYS[1], 'requested'), redis.call('HGETALL', KEYS[2])}\n";

int depstore_parse_read(const redisReply *reply, json_t **ret_doc, int64_t *ret_rev, char **ret_requested) {
        _cleanup_json_ json_t *doc = NULL;
        _cleanup_free_ const char **vals = NULL;
        _cleanup_free_ size_t *lens = NULL;
        _cleanup_free_ char *requested = NULL;
        const redisReply *inst;
        int64_t rev = 0;
        size_t n = 0;
        int r;

        if (!reply || reply->type == REDIS_REPLY_ERROR)
                return reply ? -EPROTO : -EBADMSG;
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4 || reply->element[3]->type != REDIS_REPLY_ARRAY)
                return -EBADMSG;
        if (reply->element[0]->type != REDIS_REPLY_STRING)
                return -ENOENT;
        if (reply->element[1]->type == REDIS_REPLY_STRING && parse_int64(reply->element[1]->str, &rev) < 0)
                return -EBADMSG;
        if (reply->element[2]->type == REDIS_REPLY_STRING && !(requested = strdup(reply->element[2]->str)))
                return -ENOMEM;
        doc = json_loadb(reply->element[0]->str, reply->element[0]->len, 0, NULL);
        if (!json_is_object(doc))
                return -EBADMSG;

        inst = reply->element[3];
        vals = calloc(inst->elements / 2 + 1, sizeof *vals);
        lens = calloc(inst->elements / 2 + 1, sizeof *lens);
        if (!vals || !lens)
                return -ENOMEM;
        for (size_t i = 0; i + 1 < inst->elements; i += 2)
                if (inst->element[i + 1]->type == REDIS_REPLY_STRING) {
                        vals[n] = inst->element[i + 1]->str;
                        lens[n++] = inst->element[i + 1]->len;
                }
        r = rollout_json_attach_instances(doc, vals, lens, n);
        if (r < 0)
                return r == -EINVAL ? -EBADMSG : r;

        *ret_doc = TAKE_PTR(doc);
        if (ret_rev)
                *ret_rev = rev;
        if (ret_requested)
                *ret_requested = TAKE_PTR(requested);
        return 0;
}
