using System.Diagnostics;
using System.Net.Http;
using System.Text.RegularExpressions;

namespace SecureChannels.Cli.Tests;

/// <summary><c>securechannels relay run</c>: starts with no configuration beyond its arguments, serves /healthz, keeps its identity, stops on SIGTERM.</summary>
public sealed partial class RelayCommandTests
{
    // A guard against a hung process, not a synchronisation device.
    private static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Relay_run_creates_its_identity_serves_healthz_and_keeps_its_identity_across_restarts()
    {
        using var sandbox = new CliSandbox();
        await sandbox.CreateIdentityAsync("authority");

        var (first, metrics) = await RunUntilStoppedAsync(sandbox, async endpoint =>
        {
            using var http = new HttpClient();
            Assert.Equal("ok", await http.GetStringAsync(new Uri($"http://{endpoint}/healthz")));
        });
        Assert.True(File.Exists(sandbox.PathOf(".securechannels/relay.identity")));
        Assert.StartsWith("127.0.0.1:", metrics, StringComparison.Ordinal);

        var (second, _) = await RunUntilStoppedAsync(sandbox, _ => Task.CompletedTask);
        Assert.Equal(first, second);
    }

    // Starts the relay, waits for its "listening" line, runs the check, sends SIGTERM and requires a clean exit.
    private static async Task<(string Identifier, string MetricsEndpoint)> RunUntilStoppedAsync(CliSandbox sandbox, Func<string, Task> check)
    {
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var start = new ProcessStartInfo(dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = sandbox.Directory };
        foreach (var argument in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "securechannels.dll"), "relay", "run", "--insecure-fast-kdf", "--trust", "authority.identity",
            "--Relay:Name=edge-test", "--Relay:Endpoint=127.0.0.1:0", "--Relay:MetricsEndpoint=127.0.0.1:0",
        })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["SECURECHANNELS_PASSPHRASE"] = CliSandbox.Passphrase;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the CLI.");
        using var guard = new CancellationTokenSource(Guard);
        try
        {
            var stderr = process.StandardError.ReadToEndAsync(guard.Token);
            string? line;
            Match match;
            do
            {
                line = await process.StandardOutput.ReadLineAsync(guard.Token) ?? throw new InvalidOperationException($"The relay exited: {await stderr}");
                match = Listening().Match(line);
            }
            while (!match.Success);

            Assert.Equal("edge-test", match.Groups["name"].Value);
            await check(match.Groups["metrics"].Value);

            using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await kill.WaitForExitAsync(guard.Token);
            }

            var rest = process.StandardOutput.ReadToEndAsync(guard.Token);
            await process.WaitForExitAsync(guard.Token);
            await rest;
            Assert.True(process.ExitCode == 0, await stderr);
            Assert.DoesNotContain(CliSandbox.Passphrase, await stderr, StringComparison.Ordinal);
            return (match.Groups["id"].Value, match.Groups["metrics"].Value);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
    }

    [GeneratedRegex(@"^relay (?<name>\S+) (?<id>I[0-9a-f]{64}) listening on (?<hop>\S+) \(metrics on (?<metrics>\S+)\)$")]
    private static partial Regex Listening();
}
