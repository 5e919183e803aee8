#pragma once
// Reading and writing models: native JSON (docs/formats.md), Hugging Face
// config.json and ONNX, with the format detected from the content.

#include "partita/core/model.h"
#include "partita/core/result.h"

#include <string>

namespace partita {

// Native JSON. toJson/fromJson round-trip exactly.
std::string modelToJson(const Model& model);
Result<Model> modelFromJson(const std::string& text, const std::string& file = {});

// Hugging Face config.json of the BERT, GPT-2, Llama, Mistral, Mixtral and T5 families.
Result<Model> modelFromHfConfig(const std::string& text, const std::string& file = {});

// ONNX model bytes (ModelProto). Fails with a clear message when built without libonnx.
Result<Model> modelFromOnnx(const std::string& bytes, const std::string& file = {});
bool onnxSupported();

// Reads a file and picks the importer: ONNX by magic/extension, native JSON
// by its "partita_model" key, Hugging Face by "model_type"/"architectures".
Result<Model> loadModel(const std::string& path);

} // namespace partita
