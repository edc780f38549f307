/*
 * status.c - human-readable text for every bcg_status code.
 */
#include "bcg_dsp.h"

const char *bcg_strerror(bcg_status status)
{
    switch (status) {
    case BCG_OK:
        return "success";
    case BCG_ERR_NULL:
        return "a required pointer argument is NULL";
    case BCG_ERR_ORDER:
        return "filter order outside 1..BCG_MAX_ORDER";
    case BCG_ERR_FS:
        return "sampling rate not finite or outside BCG_MIN_FS..BCG_MAX_FS";
    case BCG_ERR_BAND:
        return "band edges not finite or not 0 < low < high < fs/2";
    case BCG_ERR_SECTIONS:
        return "section count outside 1..BCG_MAX_SECTIONS";
    case BCG_ERR_COEF:
        return "a coefficient is not finite, or a0 of a section is not 1";
    case BCG_ERR_CAPACITY:
        return "an output buffer is smaller than the documented bound";
    case BCG_ERR_PARAM:
        return "a parameter is outside its documented range";
    }
    return "unknown status";
}
