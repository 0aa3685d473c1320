#ifndef FILEFLEET_CRDKAFKA_SHIM_H
#define FILEFLEET_CRDKAFKA_SHIM_H
#include <librdkafka/rdkafka.h>
#endif
