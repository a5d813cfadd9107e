using Samples.Worker;

// The worker runs until Ctrl+C or SIGTERM (the generic host handles both). Everything else is in WorkerAgent.
return await WorkerAgent.RunAsync(args);
