# Integration tests: ONNX node conformance, CLI behaviour, end-to-end models.
find_package(Python3 COMPONENTS Interpreter)

add_executable(node_tests ${CMAKE_CURRENT_SOURCE_DIR}/conformance/node_tests.c)
target_include_directories(node_tests PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(node_tests PRIVATE sprun)
if(SPRUN_HAVE_CUDA)
  set_target_properties(node_tests PROPERTIES LINKER_LANGUAGE CUDA)
endif()
set(NODE_TEST_DIR /usr/share/libonnx-testdata/data/node)
add_test(NAME onnx_node_conformance
         COMMAND node_tests --dir ${NODE_TEST_DIR} --backend cpu
                 --xfail ${CMAKE_CURRENT_SOURCE_DIR}/conformance/expected_failures.txt)
set_tests_properties(onnx_node_conformance PROPERTIES LABELS conformance TIMEOUT 1200)

if(SPRUN_HAVE_CUDA)
  # The same suite on the GPU: fp32 mode against ONNX's tolerances, fp16 mode
  # with fp16 ones. Without a GPU the runner exits 77 (skipped).
  add_test(NAME onnx_node_conformance_gpu_fp32
           COMMAND node_tests --dir ${NODE_TEST_DIR} --backend cuda --precision fp32
                   --xfail ${CMAKE_CURRENT_SOURCE_DIR}/conformance/expected_failures_gpu.txt)
  add_test(NAME onnx_node_conformance_gpu_fp16
           COMMAND node_tests --dir ${NODE_TEST_DIR} --backend cuda --precision fp16 --rtol 1e-2 --atol 1e-3
                   --xfail ${CMAKE_CURRENT_SOURCE_DIR}/conformance/expected_failures_gpu_fp16.txt)
  set_tests_properties(onnx_node_conformance_gpu_fp32 onnx_node_conformance_gpu_fp16
                       PROPERTIES LABELS "gpu;conformance" SKIP_RETURN_CODE 77 TIMEOUT 1200)
endif()

add_test(NAME cli_errors
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli_errors.sh $<TARGET_FILE:sprun_cli>
                 ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_errors PROPERTIES LABELS cli TIMEOUT 300)

add_test(NAME cli_tune
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_tune.sh $<TARGET_FILE:sprun_cli> ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_tune PROPERTIES LABELS cli TIMEOUT 300)

if(Python3_FOUND)
  add_test(NAME e2e_models_tiny
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/models/e2e_check.py
                   --sprun $<TARGET_FILE:sprun_cli> --workdir ${CMAKE_BINARY_DIR}/e2e-tiny)
  set_tests_properties(e2e_models_tiny PROPERTIES LABELS e2e TIMEOUT 900)
  add_test(NAME e2e_models_full
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/models/e2e_check.py
                   --sprun $<TARGET_FILE:sprun_cli> --workdir ${CMAKE_BINARY_DIR}/e2e-full --full)
  set_tests_properties(e2e_models_full PROPERTIES LABELS "e2e;full" TIMEOUT 2400)
endif()
