/*
 * coachops stand-in for miniaudio.h, used only to build Ollama from its Go module.
 *
 * Go module zips leave out every directory named "vendor", so github.com/ollama/ollama
 * arrives without llama/llama.cpp/vendor/. nlohmann-json and stb come from Debian
 * (nlohmann-json3-dev, libstb-dev); miniaudio is not packaged there, and llama.cpp's
 * mtmd-helper.cpp includes it only to decode audio given to multimodal audio models.
 * This header provides the few declarations that file uses and makes every decode fail,
 * so such input is rejected with "Unable to read WAV audio file from buffer" instead of
 * being decoded. Text chat, embeddings and image input are unaffected.
 */
#ifndef COACHOPS_MINIAUDIO_STUB_H
#define COACHOPS_MINIAUDIO_STUB_H

#include <stddef.h>

#ifndef MA_API
#define MA_API static
#endif

typedef unsigned long long ma_uint64;
typedef unsigned int ma_uint32;
typedef int ma_result;

#define MA_SUCCESS 0
#define MA_NOT_IMPLEMENTED (-29)

typedef enum { ma_format_unknown = 0, ma_format_f32 = 5 } ma_format;

typedef struct {
    ma_format format;
    ma_uint32 channels;
    ma_uint32 sampleRate;
} ma_decoder_config;

typedef struct {
    int unused;
} ma_decoder;

MA_API ma_decoder_config ma_decoder_config_init(ma_format format, ma_uint32 channels, ma_uint32 sampleRate) {
    ma_decoder_config config = {format, channels, sampleRate};
    return config;
}

MA_API ma_result ma_decoder_init_memory(const void *data, size_t size, const ma_decoder_config *config, ma_decoder *decoder) {
    (void)data; (void)size; (void)config; (void)decoder;
    return MA_NOT_IMPLEMENTED;
}

MA_API ma_result ma_decoder_get_length_in_pcm_frames(ma_decoder *decoder, ma_uint64 *length) {
    (void)decoder;
    *length = 0;
    return MA_NOT_IMPLEMENTED;
}

MA_API ma_result ma_decoder_read_pcm_frames(ma_decoder *decoder, void *frames, ma_uint64 count, ma_uint64 *read) {
    (void)decoder; (void)frames; (void)count;
    if (read != NULL) *read = 0;
    return MA_NOT_IMPLEMENTED;
}

MA_API ma_result ma_decoder_uninit(ma_decoder *decoder) {
    (void)decoder;
    return MA_SUCCESS;
}

#endif
