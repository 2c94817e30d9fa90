# coordctl lock: 16 concurrent holders of one lock never overlap, and their
# fencing tokens, pushed in critical-section order, strictly increase.
. "$COORD_HARNESS"
harness_init
harness_start_redis

D=$COORD_TEST_DIR
N=16
harness_lock_section \
        "[ \"\$COORD_LOCK_NAME\" = mutex ] || echo \"COORD_LOCK_NAME is '\$COORD_LOCK_NAME'\" >>\"\$D/overlaps\""
export D REDIS_PORT

harness_lock_holders $N "a coordctl lock" "$REDIS_URL"

harness_lock_verify $N
note "16 holders, tokens strictly increasing, no overlap"
