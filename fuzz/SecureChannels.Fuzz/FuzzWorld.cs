using SecureChannels.Protocol.Channel;
using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using SecureChannels.Protocol.Noise.Crypto;

namespace SecureChannels.Fuzz;

/// <summary>
/// The fixed cast every target shares, built once per process from fixed seeds and a frozen clock: an authority, two
/// agents (alice holds a root credential and delegates to bob), alice's channel key and attestation. Ed25519 signatures
/// are deterministic, so every process builds the very same bytes and a crash reproduces anywhere.
/// </summary>
public static class FuzzWorld
{
    /// <summary>The instant every target lives at.</summary>
    public static readonly DateTimeOffset Now = new(2026, 6, 1, 12, 0, 0, TimeSpan.Zero);

    public static TimeProvider Time { get; } = new FrozenTime(Now);

    public static ISigner AuthoritySigner { get; } = InMemorySigner.Import(Seed(1));

    public static ISigner AliceSigner { get; } = InMemorySigner.Import(Seed(2));

    public static ISigner BobSigner { get; } = InMemorySigner.Import(Seed(3));

    public static AgentIdentity Authority { get; } = Identity(AuthoritySigner);

    public static AgentIdentity Alice { get; } = Identity(AliceSigner);

    public static AgentIdentity Bob { get; } = Identity(BobSigner);

    /// <summary>Alice's Noise static key (X25519).</summary>
    public static DhKeyPair AliceChannelKey { get; } = Curve25519Dh.Instance.ImportPrivateKey(Seed(4));

    public static SignedKeyAttestation AliceAttestation { get; } =
        Alice.AttestChannelKeyAsync(AliceChannelKey.PublicKey.ToArray(), TimeSpan.FromHours(1), Time).GetAwaiter().GetResult();

    /// <summary>Bob's Noise static key (X25519).</summary>
    public static DhKeyPair BobChannelKey { get; } = Curve25519Dh.Instance.ImportPrivateKey(Seed(5));

    public static SignedKeyAttestation BobAttestation { get; } =
        Bob.AttestChannelKeyAsync(BobChannelKey.PublicKey.ToArray(), TimeSpan.FromHours(1), Time).GetAwaiter().GetResult();

    public static Principal Principal { get; } = Principal.Parse("user:alice@example.com");

    /// <summary>Authority → alice, delegable twice more.</summary>
    public static CredentialChain AliceChain { get; } = new(
        [Sign(Authority, new Credential(Id(1), Authority.Identifier, Alice.Identifier, Principal, AttributeSet.Parse(["env=prod", "env=staging", "role=billing"]), Now.AddHours(-1), Now.AddHours(8), 2, parent: null))],
        []);

    /// <summary>Authority → alice → bob.</summary>
    public static CredentialChain BobChain { get; } = Delegate();

    /// <summary>A verifier trusting only the authority; a new one per call, so no input's verdict is cached for the next.</summary>
    public static CredentialVerifier NewVerifier(RevocationRegistry? revocations = null, bool requireRegistered = false) =>
        new(new TrustAnchors().Trust(Authority.Verified), revocations ?? new RevocationRegistry(), Time, new CredentialVerifierOptions { Cache = new VerificationCache(16), RequireRegisteredDelegations = requireRegistered });

    /// <summary>Alice's channel options (the handshake's verifier side), with a fresh verifier.</summary>
    public static SecureChannelOptions AliceOptions(RevocationRegistry? revocations = null) => new()
    {
        Identity = Alice,
        ChannelKey = AliceChannelKey,
        Attestation = AliceAttestation,
        Credentials = [AliceChain],
        Verifier = NewVerifier(revocations),
        TimeProvider = Time,
    };

    /// <summary>The signer of <paramref name="identifier"/> among the cast, or null for a stranger.</summary>
    public static AgentIdentity? Find(Identifier identifier) =>
        identifier == Authority.Identifier ? Authority : identifier == Alice.Identifier ? Alice : identifier == Bob.Identifier ? Bob : null;

    public static SignedCredential Sign(AgentIdentity issuer, Credential credential) =>
        new(credential, issuer.Verified.Current.ChangeHash, SignatureDomain.SignAsync(issuer.Signer, SignatureDomain.Credential, credential.Encoded).AsTask().GetAwaiter().GetResult());

    /// <summary>A fixed 32-byte value: <paramref name="tag"/> then a counting pattern.</summary>
    public static byte[] Seed(byte tag)
    {
        var seed = new byte[32];
        for (var i = 0; i < seed.Length; i++)
        {
            seed[i] = (byte)(tag * 31 + i);
        }

        return seed;
    }

    public static byte[] Id(byte tag) => Seed(tag)[..CredentialLimits.CredentialIdLength];

    // A day old, so nothing the targets check at Now predates the keys.
    private static AgentIdentity Identity(ISigner signer) => AgentIdentity.CreateAsync(signer, new FrozenTime(Now.AddDays(-1))).GetAwaiter().GetResult();

    private static CredentialChain Delegate()
    {
        var parent = AliceChain.Leaf;
        var child = new Credential(Id(2), Alice.Identifier, Bob.Identifier, Principal, AttributeSet.Parse(["env=prod", "role=billing"]), Now.AddHours(-1), Now.AddHours(4), 1, new ParentReference(parent.Credential.Id, parent.SignedHash));
        return new CredentialChain([parent, Sign(Alice, child)], [Alice.History]);
    }

    private sealed class FrozenTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
