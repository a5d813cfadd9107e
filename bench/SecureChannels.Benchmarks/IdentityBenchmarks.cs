using BenchmarkDotNet.Attributes;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Creating agent identities: <see cref="InMemorySigner.Generate"/> (an NSec Ed25519 key in guarded memory),
/// <see cref="AgentIdentity.CreateAsync"/> (encode and hash the first change, sign it, verify the one-change
/// history, hash the identifier) and the signer's disposal. Per identity the NSec work is one key creation,
/// one signature and one verification.
/// </summary>
[MemoryDiagnoser]
public class IdentityBenchmarks
{
    /// <summary>Identities created by one <see cref="CreateSwarm"/> operation.</summary>
    public const int SwarmSize = 1000;

    private readonly TimeProvider _time = FixedTimeProvider.Default;
    private readonly InMemorySigner?[] _signers = new InMemorySigner?[SwarmSize];
    private readonly AgentIdentity?[] _swarm = new AgentIdentity?[SwarmSize];

    [GlobalSetup]
    public async Task Setup()
    {
        using var signer = InMemorySigner.Generate();
        var identity = await AgentIdentity.CreateAsync(signer, _time).ConfigureAwait(false);
        if (!identity.Verified.PublicKey.SequenceEqual(signer.PublicKey.Span))
        {
            throw new InvalidOperationException("The identity's key is not its signer's.");
        }
    }

    /// <summary>One identity: signer generation, identity creation, signer disposal.</summary>
    [Benchmark]
    public async Task<AgentIdentity> CreateIdentity()
    {
        using var signer = InMemorySigner.Generate();
        return await AgentIdentity.CreateAsync(signer, _time).ConfigureAwait(false);
    }

    /// <summary>
    /// A swarm: <see cref="SwarmSize"/> identities created one after another and all alive at the end (1,000
    /// NSec keys in guarded memory at once), then their signers disposed. Reported per identity.
    /// </summary>
    [Benchmark(OperationsPerInvoke = SwarmSize)]
    public async Task CreateSwarm()
    {
        try
        {
            for (var i = 0; i < SwarmSize; i++)
            {
                var signer = InMemorySigner.Generate();
                _signers[i] = signer;
                _swarm[i] = await AgentIdentity.CreateAsync(signer, _time).ConfigureAwait(false);
            }
        }
        finally
        {
            for (var i = 0; i < SwarmSize; i++)
            {
                _signers[i]?.Dispose();
                (_signers[i], _swarm[i]) = (null, null);
            }
        }
    }
}
