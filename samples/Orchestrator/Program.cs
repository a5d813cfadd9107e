using Microsoft.Extensions.Configuration;
using Samples.Orchestrator;

// Later sources win: appsettings.json (next to the program), then environment variables (Relay__Identifier=I...),
// then arguments (--Ticket sct1_... or --Relay:Identifier=I...).
var configuration = new ConfigurationBuilder()
    .SetBasePath(AppContext.BaseDirectory)
    .AddJsonFile("appsettings.json", optional: true)
    .AddEnvironmentVariables()
    .AddCommandLine(args)
    .Build();

// Ctrl+C cancels the run (the sub-agent and the channels are still disposed on the way out).
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

var run = await OrchestratorAgent.RunAsync(configuration, Console.Out, stop.Token);
return run.ExitCode;
