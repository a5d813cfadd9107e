using System.Buffers;
using System.Diagnostics;
using SecureChannels.Protocol.Circuits;
using Xunit.Abstractions;

namespace SecureChannels.Relay.Tests;

/// <summary>Many agents and circuits on one relay, bounded in time.</summary>
[Collection(RunsAlone.Name)] // alone: it loads both cores
public sealed class RelayScaleTests(ITestOutputHelper output)
{
    private const int Agents = 1000;
    private const int CircuitsPerAgent = 10;
    private const int Parallelism = 32;

    [Fact]
    public async Task A_thousand_agents_with_ten_circuits_each_all_round_trip_through_one_relay()
    {
        await using var kit = await RelayTestKit.CreateAsync();
        var relay = await kit.StartRelayAsync(settings: new Dictionary<string, string?>
        {
            ["MaxConnectionsPerAddress"] = "100000",
            ["MaxPendingOpensPerConnection"] = "100",
        });
        var total = Stopwatch.StartNew();
        var agents = new RelayTestKit.Agent[Agents];
        await ForEachAsync(Agents, async i => agents[i] = await kit.CreateAgentAsync(["role=agent"]));
        var created = total.Elapsed;

        var links = new RelayLink[Agents];
        await ForEachAsync(Agents, async i => links[i] = await kit.ConnectAsync(agents[i], relay));
        var connected = total.Elapsed;
        Assert.Equal(Agents, relay.Server.ConnectionCount);

        // Every agent echoes what arrives on each circuit it accepts.
        using var stop = new CancellationTokenSource();
        var echoes = links.Select(link => EchoAsync(link, CircuitsPerAgent)).ToArray();

        // Agent i opens a circuit to each of the next ten agents in the ring; each carries one small round trip.
        long roundTrips = 0;
        await ForEachAsync(Agents, async i =>
        {
            await Task.WhenAll(Enumerable.Range(1, CircuitsPerAgent).Select(async k =>
            {
                var target = agents[(i + k) % Agents].Identity.Identifier.ToString();
                var circuit = await links[i].OpenCircuitAsync(target).WaitAsync(RelayTestKit.Guard);
                await using (circuit)
                {
                    var message = RelayTestKit.Pattern(32, (i * 16) + k);
                    await circuit.Output.WriteAsync(message);
                    await circuit.Output.CompleteAsync();
                    var echoed = await ReadToEndAsync(circuit);
                    Assert.Equal(message, echoed);
                    Interlocked.Increment(ref roundTrips);
                }
            }));
        });
        await Task.WhenAll(echoes).WaitAsync(RelayTestKit.Guard);
        var exchanged = total.Elapsed;

        Assert.Equal((long)Agents * CircuitsPerAgent, roundTrips);
        output.WriteLine($"{Agents} agents: identities {created.TotalSeconds:F1} s, hops {(connected - created).TotalSeconds:F1} s, {roundTrips} circuits {(exchanged - connected).TotalSeconds:F1} s, total {exchanged.TotalSeconds:F1} s");
        Assert.True(exchanged < TimeSpan.FromSeconds(60), $"Took {exchanged.TotalSeconds:F1} s.");
    }

    private static async Task EchoAsync(RelayLink link, int count)
    {
        var circuits = new List<Task>();
        for (var n = 0; n < count; n++)
        {
            var incoming = await link.AcceptCircuitAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(120));
            circuits.Add(Task.Run(async () =>
            {
                var circuit = await incoming.AcceptAsync();
                var received = await ReadToEndAsync(circuit);
                await circuit.Output.WriteAsync(received);
                await circuit.Output.CompleteAsync();
                await circuit.Completion.WaitAsync(TimeSpan.FromSeconds(120));
            }));
        }

        await Task.WhenAll(circuits);
    }

    private static async Task<byte[]> ReadToEndAsync(Circuit circuit)
    {
        var received = new List<byte>();
        while (true)
        {
            var result = await circuit.Input.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(120));
            received.AddRange(result.Buffer.ToArray());
            circuit.Input.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return [.. received];
            }
        }
    }

    private static Task ForEachAsync(int count, Func<int, Task> body) =>
        Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (i, _) => await body(i));
}
