// zlib (Debian: zlib1g-dev), for reading gzip-compressed candle files.
#include <zlib.h>
