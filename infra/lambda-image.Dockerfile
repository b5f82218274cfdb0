# A model target's Lambda as a container image, when its zip cannot run on the python3.11 managed runtime:
# ai-edge-litert and numpy 2.4 ship manylinux_2_27 wheels (no older), and that runtime is Amazon Linux 2 (glibc 2.26).
# Debian bookworm's glibc is 2.36; awslambdaric is the runtime interface client the managed images carry.
#
#   nox -s bundles     # build/lambda/<target>/ (the zip's content: code, models/, linux x86_64 packages)
#   docker build -f infra/lambda-image.Dockerfile --build-arg TARGET=classify -t imageclassify-classify build/lambda
#
# Then aws_lambda_function.fn takes `package_type = "Image"` and the image's ECR URI for that target.
FROM python:3.11-slim-bookworm
ARG TARGET
# Pin it beside the other pins before use (it is not among the project's pinned dependencies yet).
RUN pip install --no-cache-dir awslambdaric
WORKDIR /var/task
COPY ${TARGET}/ /var/task/
ENV PYTHONPATH=/var/task
ENTRYPOINT ["python", "-m", "awslambdaric"]
CMD ["lambda_main.handler"]
