#ifndef FILEFLEET_COPENSSL_SHIM_H
#define FILEFLEET_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/sha.h>
#endif
