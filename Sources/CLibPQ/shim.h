#ifndef FILEFLEET_CLIBPQ_SHIM_H
#define FILEFLEET_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
