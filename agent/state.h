/* The agent's local state under state_dir (survives restarts and Redis outages):
 *   instances/ID.json   {"version":"2.0","config_version":N}  installed version wins on restart
 *   instances/ID.config.json {"version":N,"config":{...}}  the advertised config last
 *                       applied (mode 0600: it holds secrets), so they are masked
 *                       in logs and results from the start after a restart
 *   commands/CMDID.json {"state":"started"} while a command runs, then its result
 *                       until the result is written to Redis exactly once. */
#pragma once

#include <stdint.h>

#include <jansson.h>

/* Create state_dir and its subdirectories (0750).  0 or -errno. */
int state_init(const char *state_dir);

/* Read an instance's record.  -ENOENT when there is none; outputs untouched on failure.
 * *ret_version is malloc'd. */
int state_load_instance(const char *state_dir, const char *id, char **ret_version, int64_t *ret_config_version);
int state_save_instance(const char *state_dir, const char *id, const char *version, int64_t config_version);

/* The advertised config last applied to instance id.  Load: 0 and *ret (a new
 * reference), -ENOENT when none, -EBADMSG when unreadable.  Save: 0 or -errno. */
int state_load_config(const char *state_dir, const char *id, json_t **ret);
int state_save_config(const char *state_dir, const char *id, int64_t version, json_t *config);

/* A command's local record (JSON object), -ENOENT when none. */
int state_command_get(const char *state_dir, const char *cmd_id, json_t **ret);
int state_command_put(const char *state_dir, const char *cmd_id, json_t *record);
int state_command_remove(const char *state_dir, const char *cmd_id);
