"""A TF Serving client stand-in, run as a fresh process that imports TensorFlow but never mocse_tf.

It loads an exported SavedModel the way TF Serving does (by its `serving_default` signature), builds the three
request forms a client sends (a gRPC `PredictRequest` proto, REST JSON in row `instances` form and in columnar
`inputs` form), decodes each back into input tensors as the model server would, runs the signature, encodes
the responses (`PredictResponse` proto, REST `predictions` / `outputs` JSON), decodes those again, and saves
what a client would finally read to an .npz per request form.

usage: python serving_client.py SAVED_MODEL_DIR IMAGES_NPY OUT_DIR
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402

SIGNATURE = "serving_default"


def grpc_round_trip(signature, input_name, images):
    """PredictRequest -> serialized bytes -> server-side tensors -> PredictResponse -> client numpy arrays."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mocse"
    request.model_spec.signature_name = SIGNATURE
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(images, dtype=tf.uint8))
    wire = request.SerializeToString()

    received = predict_pb2.PredictRequest.FromString(wire)
    feeds = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in received.inputs.items()}
    outputs = signature(**feeds)
    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))

    answer = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    return {name: tf.make_ndarray(proto) for name, proto in answer.outputs.items()}


def rest_feeds(body, input_specs):
    """Decodes a REST predict body like the model server: `instances` (row) or `inputs` (columnar)."""
    if ("instances" in body) == ("inputs" in body):
        raise ValueError("a REST predict body has exactly one of 'instances' or 'inputs'")
    if "instances" in body:
        rows = body["instances"]
        if isinstance(rows[0], dict):
            columns = {name: [row[name] for row in rows] for name in input_specs}
        else:  # a single-input signature may list bare tensors
            (only_name,) = input_specs
            columns = {only_name: rows}
    else:
        values = body["inputs"]
        if isinstance(values, dict):
            columns = values
        else:
            (only_name,) = input_specs
            columns = {only_name: values}
    return {name: tf.constant(columns[name], dtype=input_specs[name].dtype) for name in input_specs}


def rest_round_trip(signature, input_specs, body_text, row_format):
    """One REST call: JSON text in, the JSON text the server would answer, decoded into numpy arrays."""
    outputs = {name: value.numpy().tolist() for name, value in signature(**rest_feeds(json.loads(body_text),
                                                                                      input_specs)).items()}
    if row_format:  # {"predictions": [{name: value of instance i}, ...]}
        batch = len(next(iter(outputs.values())))
        reply = json.dumps({"predictions": [{name: v[i] for name, v in outputs.items()} for i in range(batch)]})
        rows = json.loads(reply)["predictions"]
        return {name: np.array([row[name] for row in rows]) for name in rows[0]}
    reply = json.dumps({"outputs": outputs})  # columnar: {"outputs": {name: batch of values}}
    return {name: np.array(value) for name, value in json.loads(reply)["outputs"].items()}


def main(model_dir, images_path, out_dir):
    images = np.load(images_path)
    loaded = tf.saved_model.load(model_dir)
    signature = loaded.signatures[SIGNATURE]
    _, input_specs = signature.structured_input_signature
    (input_name,) = input_specs

    bodies = {
        "rest_instances": json.dumps({"signature_name": SIGNATURE, "instances": images.tolist()}),
        "rest_instances_named": json.dumps({"signature_name": SIGNATURE,
                                            "instances": [{input_name: image.tolist()} for image in images]}),
        "rest_inputs": json.dumps({"signature_name": SIGNATURE, "inputs": {input_name: images.tolist()}}),
    }
    results = {"grpc": grpc_round_trip(signature, input_name, images)}
    for form, body in bodies.items():
        results[form] = rest_round_trip(signature, input_specs, body, row_format=form.startswith("rest_instances"))
    for form, arrays in results.items():
        np.savez(os.path.join(out_dir, f"{form}.npz"), **arrays)

    # The point of this process: a serving client needs TensorFlow only, never this project's code.
    leaked = sorted(name for name in sys.modules if name.split(".")[0] == "mocse_tf")
    with open(os.path.join(out_dir, "client.json"), "w") as handle:
        json.dump({"input_name": input_name, "mocse_tf_modules": leaked,
                   "forms": sorted(results)}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:])
