using BenchmarkDotNet.Attributes;
using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Policy;

namespace SecureChannels.Benchmarks;

/// <summary>
/// Verifying what a peer presents: the 3-hop chain of <see cref="CredentialFixture"/> (authority, orchestrator,
/// sub-agent, sub-sub-agent) against trust anchors, a revocation registry holding a 100-entry list and a fixed
/// clock; the same from its encoded bytes; one domain-separated signature check alone; and the access policy
/// over the verified peer's attributes.
/// </summary>
/// <remarks>
/// A 3-hop chain verifies <see cref="ChainSignatures"/> Ed25519 signatures: the 3 credentials' and the one
/// change of each of the 2 delegating issuers' histories (the authority's history is a trust anchor, verified
/// once when trusted).
/// </remarks>
[MemoryDiagnoser]
public class CredentialBenchmarks
{
    /// <summary>The policy <see cref="EvaluatePolicy"/> evaluates.</summary>
    public const string PolicyText = "subject.role == \"billing\" && subject.env in [\"staging\", \"prod\"]";

    /// <summary>Ed25519 signatures one <see cref="VerifyChain"/> checks.</summary>
    public const int ChainSignatures = 5;

    private CredentialFixture _fixture = null!;
    private CredentialChain _chain = null!;
    private byte[] _encoded = [];
    private Identifier _presenter;
    private byte[] _leafIssuerKey = [];
    private byte[] _leafBody = [];
    private byte[] _leafSignature = [];
    private AccessPolicy _policy = null!;
    private PolicyInput _input = null!;

    [GlobalSetup]
    public async Task Setup()
    {
        _fixture = await CredentialFixture.CreateAsync().ConfigureAwait(false);
        _chain = _fixture.Chain;
        _encoded = _chain.Encoded;
        _presenter = _fixture.SubSubAgent.Identifier;
        var leaf = _chain.Leaf;
        _leafIssuerKey = _fixture.SubAgent.Verified.PublicKey.ToArray();
        _leafBody = leaf.Credential.Encoded;
        _leafSignature = leaf.Signature;

        var verified = VerifyChain();
        if (verified.ChainLength != 3 || DecodeAndVerifyChain().ChainLength != 3 || !SignatureDomainVerify())
        {
            throw new InvalidOperationException("The 3-hop chain does not verify.");
        }

        _policy = AccessPolicy.Parse(PolicyText);
        _input = PeerPolicyInput.Create(verified.Subject, verified.Principal, verified.ChainLength, verified.Attributes);
        if (EvaluatePolicy() != PolicyDecision.Allow)
        {
            throw new InvalidOperationException($"The policy does not allow the chain's attributes ({verified.Attributes}).");
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _fixture.Dispose();

    /// <summary>CredentialVerifier.Verify of the decoded 3-hop chain, presented by its leaf subject.</summary>
    [Benchmark]
    public VerifiedCredential VerifyChain() => _fixture.Verifier.Verify(_chain, _presenter);

    /// <summary>CredentialChain.Decode of the chain's bytes (as they arrive in a handshake), then Verify.</summary>
    [Benchmark]
    public VerifiedCredential DecodeAndVerifyChain() => _fixture.Verifier.Verify(CredentialChain.Decode(_encoded), _presenter);

    /// <summary>
    /// One signature check as the verifier makes it: SignatureDomain.Verify of the leaf credential (public key
    /// import, domain prefix copied in front of the body, Ed25519 verify).
    /// </summary>
    [Benchmark]
    public bool SignatureDomainVerify() => SignatureDomain.Verify(_leafIssuerKey, SignatureDomain.Credential, _leafBody, _leafSignature);

    /// <summary>AccessPolicy.Evaluate of <see cref="PolicyText"/> over the verified peer's PeerPolicyInput. Must allocate nothing.</summary>
    [Benchmark]
    public PolicyDecision EvaluatePolicy() => _policy.Evaluate(_input);
}
