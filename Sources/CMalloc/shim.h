#ifndef FILEFLEET_CMALLOC_SHIM_H
#define FILEFLEET_CMALLOC_SHIM_H
#include <malloc.h>
#endif
