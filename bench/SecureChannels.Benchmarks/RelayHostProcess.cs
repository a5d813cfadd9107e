using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Relay.Hops;
using SecureChannels.Relay.Hosting;
using SecureChannels.Relay.Telemetry;

using static SecureChannels.Benchmarks.BenchText;

namespace SecureChannels.Benchmarks;

/// <summary>
/// A relay in a process of its own (this executable with <see cref="Switch"/>), so that its memory and allocations
/// can be measured apart from the agents': the child trusts the parent's authority (its identity history, passed
/// hex-encoded), makes its own identity, prints <c>READY port identifier</c>, then answers one command per stdin
/// line: <c>MEM</c> (after full blocking collections: managed bytes in use, GC heap size, committed, working set,
/// circuit ends, hops), <c>STATS</c> (bytes allocated by every thread so far, DATA frames and bytes forwarded per
/// the relay's own meter). It stops at <c>QUIT</c> or end of input.
/// </summary>
internal sealed class RelayHostProcess : IAsyncDisposable
{
    public const string Switch = "--relay-host";

    private readonly Process _process;

    private RelayHostProcess(Process process, IPEndPoint endpoint, Identifier identifier)
    {
        _process = process;
        EndPoint = endpoint;
        Identifier = identifier;
    }

    public IPEndPoint EndPoint { get; }

    public Identifier Identifier { get; }

    /// <summary>The child's side: args are [Switch, authority history hex, Relay:Key=Value...].</summary>
    public static int RunChild(string[] args) => RunChildAsync(args).GetAwaiter().GetResult();

    public static async Task<RelayHostProcess> StartAsync(AgentIdentity authority, IReadOnlyDictionary<string, string?> settings)
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("No process path.");
        var start = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        if (Path.GetFileNameWithoutExtension(path).Equals("dotnet", StringComparison.Ordinal))
        {
            start.ArgumentList.Add(typeof(RelayHostProcess).Assembly.Location);
        }

        start.ArgumentList.Add(Switch);
        start.ArgumentList.Add(Convert.ToHexString(authority.History.Encoded));
        foreach (var (key, value) in settings)
        {
            start.ArgumentList.Add($"{key}={value}");
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("The relay process did not start.");
        var ready = (await process.StandardOutput.ReadLineAsync().WaitAsync(RelayPeers.Guard).ConfigureAwait(false) ?? "").Split(' ');
        if (ready is not ["READY", var port, var identifier])
        {
            process.Kill();
            throw new InvalidOperationException($"The relay process said '{string.Join(' ', ready)}' instead of READY.");
        }

        return new RelayHostProcess(process, new IPEndPoint(IPAddress.Loopback, int.Parse(port, CultureInfo.InvariantCulture)), Identifier.Parse(identifier));
    }

    public async Task<MemorySample> MemoryAsync()
    {
        var v = await AskAsync("MEM").ConfigureAwait(false);
        return new MemorySample(v[0], v[1], v[2], v[3], v[4], v[5]);
    }

    public async Task<ForwardingSample> StatsAsync()
    {
        var v = await AskAsync("STATS").ConfigureAwait(false);
        return new ForwardingSample(v[0], v[1], v[2]);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _process.StandardInput.WriteLineAsync("QUIT").ConfigureAwait(false);
            await _process.StandardInput.FlushAsync().ConfigureAwait(false);
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(15)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidOperationException)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }

    private async Task<long[]> AskAsync(string command)
    {
        await _process.StandardInput.WriteLineAsync(command).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
        var line = await _process.StandardOutput.ReadLineAsync().WaitAsync(RelayPeers.Guard).ConfigureAwait(false)
            ?? throw new InvalidOperationException("The relay process ended.");
        var parts = line.Split(' ');
        if (parts[0] != command)
        {
            throw new InvalidOperationException($"The relay process answered '{line}' to {command}.");
        }

        return [.. parts.Skip(1).Select(p => long.Parse(p, CultureInfo.InvariantCulture))];
    }

    private static async Task<int> RunChildAsync(string[] args)
    {
        var authority = IdentityHistory.Decode(Convert.FromHexString(args[1])).Verify();
        var settings = RelayPeers.RelaySettings();
        foreach (var setting in args.Skip(2))
        {
            var at = setting.IndexOf('=', StringComparison.Ordinal);
            settings[setting[..at]] = setting[(at + 1)..];
        }

        using var signer = InMemorySigner.Generate();
        var identity = await AgentIdentity.CreateAsync(signer, TimeProvider.System).ConfigureAwait(false);
        var app = RelayPeers.BuildRelay([], new RelayIdentity(identity, new TrustAnchors().Trust(authority), new RevocationRegistry(), []), settings);
        await using (app.ConfigureAwait(false))
        {
            long frames = 0;
            long bytes = 0;
            using var listener = new MeterListener();
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == RelayMetrics.MeterName && instrument.Name is "securechannels.relay.frames.forwarded" or "securechannels.relay.bytes.forwarded")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
            {
                if (instrument.Name == "securechannels.relay.frames.forwarded")
                {
                    Interlocked.Add(ref frames, value);
                }
                else
                {
                    Interlocked.Add(ref bytes, value);
                }
            });
            listener.Start();

            await app.StartAsync().ConfigureAwait(false);
            var server = app.Services.GetRequiredService<RelayServer>();
            var output = Console.Out;
            await output.WriteLineAsync(Invariant($"READY {server.HopEndPoint!.Port} {server.Identifier}")).ConfigureAwait(false);
            await output.FlushAsync().ConfigureAwait(false);
            while (await Console.In.ReadLineAsync().ConfigureAwait(false) is { } command && command != "QUIT")
            {
                string answer;
                if (command == "MEM")
                {
                    GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                    GC.WaitForPendingFinalizers();
                    var managed = GC.GetTotalMemory(forceFullCollection: true);
                    var info = GC.GetGCMemoryInfo(GCKind.Any);
                    using var self = Process.GetCurrentProcess();
                    answer = Invariant($"MEM {managed} {info.HeapSizeBytes} {info.TotalCommittedBytes} {self.WorkingSet64} {server.CircuitEndCount} {server.ConnectionCount}");
                }
                else if (command == "STATS")
                {
                    answer = Invariant($"STATS {GC.GetTotalAllocatedBytes(precise: true)} {Interlocked.Read(ref frames)} {Interlocked.Read(ref bytes)}");
                }
                else
                {
                    answer = "ERROR unknown command";
                }

                await output.WriteLineAsync(answer).ConfigureAwait(false);
                await output.FlushAsync().ConfigureAwait(false);
            }

            await app.StopAsync().ConfigureAwait(false);
        }

        return 0;
    }

    /// <summary>The relay process's memory: managed bytes in use after full collections, GC heap size and committed bytes, working set.</summary>
    public sealed record MemorySample(long Managed, long HeapSize, long Committed, long WorkingSet, long CircuitEnds, long Hops)
    {
        public override string ToString() => Invariant($"GC.GetTotalMemory(true) {Managed / 1048576.0:F1} MiB, GC heap {HeapSize / 1048576.0:F1} MiB, committed {Committed / 1048576.0:F1} MiB, working set {WorkingSet / 1048576.0:F1} MiB; {Hops} hops, {CircuitEnds} circuit ends");
    }

    /// <summary>Bytes the relay process allocated so far (all threads), and DATA frames and bytes its meter counted as forwarded.</summary>
    public sealed record ForwardingSample(long Allocated, long Frames, long Bytes);
}
