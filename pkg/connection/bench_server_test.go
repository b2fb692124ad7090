package connection_test

const benchServerEnv = "STREAMER_CONNECTION_BENCH_SERVER"

func runBenchServer() int { return 0 }
