"""Jobs over gRPC: the `grpc` step type and the JobExecutor service a worker serves."""
