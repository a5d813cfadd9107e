using SecureChannels.Protocol.Credentials;
using SecureChannels.Protocol.Identity;
using SecureChannels.Protocol.Identity.Keys;
using static SecureChannels.Protocol.Tests.Identity.IdentityTestKit;

namespace SecureChannels.Protocol.Tests.Identity;

/// <summary>No text the identity and credential types produce (ToString, error messages) nor any encoding carries a private key.</summary>
public sealed class SecretHygieneTests
{
    private static readonly byte[] AuthoritySeed = [.. Enumerable.Range(0, 32).Select(i => (byte)(0xa5 ^ (i * 13)))];
    private static readonly byte[] AgentSeed = [.. Enumerable.Range(0, 32).Select(i => (byte)(0x3c ^ (i * 29)))];
    private static readonly byte[] RotatedSeed = [.. Enumerable.Range(0, 32).Select(i => (byte)(0x71 ^ (i * 47)))];

    private static IEnumerable<string> SecretForms(byte[] seed) =>
    [
        Convert.ToHexStringLower(seed),
        Convert.ToHexString(seed),
        Convert.ToBase64String(seed),
        Convert.ToHexStringLower(seed.AsSpan(0, 12)),
        Convert.ToBase64String(seed.AsSpan(0, 12)),
        string.Join(", ", seed.Take(8)),
    ];

    [Fact]
    public async Task TextsAndEncodingsNeverContainAPrivateKey()
    {
        var time = NewClock();
        using var authoritySigner = InMemorySigner.Import(AuthoritySeed);
        using var agentSigner = InMemorySigner.Import(AgentSeed);
        using var rotatedSigner = InMemorySigner.Import(RotatedSeed);
        var authority = await AgentIdentity.CreateAsync(authoritySigner, time);
        var agent = await AgentIdentity.CreateAsync(agentSigner, time);
        var rotated = await agent.RotateAsync(rotatedSigner, time);
        var attestation = await rotated.AttestChannelKeyAsync(new byte[32], TimeSpan.FromHours(1), time);
        var chain = await CredentialIssuer.IssueAsync(authority, rotated.Identifier, Principal.Parse("user:alice"), AttributeSet.Parse(["role=x"]), time.GetUtcNow(), time.GetUtcNow().AddHours(1), 1);
        var list = await SignedRevocationList.SignAsync(new RevocationList(authority.Identifier, 1, time.GetUtcNow(), [RevocationEntry.ForSubject(agent.Identifier)]), authority);
        var registry = new RevocationRegistry();
        registry.Merge(list, authority.Verified);
        var verifier = new CredentialVerifier(new TrustAnchors().Trust(authority.Verified), registry, time);
        var verified = new CredentialVerifier(new TrustAnchors().Trust(authority.Verified), new RevocationRegistry(), time).Verify(chain);

        var texts = new List<string>
        {
            authoritySigner.ToString(),
            rotatedSigner.ToString(),
            authority.ToString(),
            rotated.ToString(),
            rotated.Verified.ToString()!,
            rotated.History.ToString()!,
            attestation.ToString(),
            attestation.Attestation.ToString(),
            chain.Leaf.ToString(),
            chain.Leaf.Credential.ToString(),
            verified.ToString(),
            list.ToString(),
            list.List.ToString(),
        };
        texts.AddRange(rotated.History.Changes.Select(c => c.ToString()));
        texts.Add(Assert.Throws<CredentialException>(() => verifier.Verify(chain)).Message);
        texts.Add(Assert.Throws<IdentityException>(() => AgentIdentity.Load(rotated.History, agentSigner)).Message);
        texts.Add(Assert.Throws<IdentityException>(() => attestation.Verify(agent.Verified, new byte[32], time.GetUtcNow(), TimeSpan.Zero)).Message);
        texts.Add(Assert.Throws<IdentityException>(() => new IdentityHistory([rotated.History.Changes[1]]).Verify()).Message);

        var encodings = new[] { rotated.History.Encoded, authority.History.Encoded, attestation.Encode(), chain.Encoded, list.Encode() };

        foreach (var seed in new[] { AuthoritySeed, AgentSeed, RotatedSeed })
        {
            foreach (var secret in SecretForms(seed))
            {
                Assert.All(texts, text => Assert.DoesNotContain(secret, text, StringComparison.OrdinalIgnoreCase));
            }

            Assert.All(encodings, encoding => Assert.True(encoding.AsSpan().IndexOf(seed.AsSpan(0, 8)) < 0, "An encoding contains private key bytes."));
        }

        // The public key is what the signer shows, and it is in the history.
        Assert.Contains(Convert.ToHexStringLower(rotatedSigner.PublicKey.Span), rotatedSigner.ToString(), StringComparison.Ordinal);
    }
}
