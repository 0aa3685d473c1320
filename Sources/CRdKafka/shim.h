#ifndef FILEFLEET_CRDKAFKA_SHIM_H
#define FILEFLEET_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>

/* rd_kafka_producev is variadic, which Swift cannot call. The payload is copied
 * (RD_KAFKA_MSG_F_COPY). A NULL key or value stays NULL on the wire; has_value /
 * has_key distinguish "no bytes" (null) from "zero bytes" (empty). */
static inline rd_kafka_resp_err_t
filefleet_produce(rd_kafka_t *rk, const char *topic, int32_t partition,
                  const void *key, size_t key_len, int has_key,
                  const void *value, size_t value_len, int has_value,
                  void *opaque) {
    static const char empty[1] = {0};
    const void *k = has_key ? (key ? key : empty) : NULL;
    const void *v = has_value ? (value ? value : empty) : NULL;
    return rd_kafka_producev(rk,
                             RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_KEY(k, has_key ? key_len : 0),
                             RD_KAFKA_V_VALUE((void *)v, has_value ? value_len : 0),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_OPAQUE(opaque),
                             RD_KAFKA_V_END);
}
#endif
