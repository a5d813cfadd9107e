using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Authority;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

/// <summary>
/// The revocation list is bounded (AuthorityOptions.MaxRevocationEntries), yet revoking keeps working for as long as the
/// authority runs: when it is full, entries of credentials that expired past the margin make room.
/// </summary>
public sealed class RevocationListBoundTests
{
    [Fact]
    public async Task A_full_list_drops_the_entries_of_expired_credentials_and_refuses_only_when_none_has_expired()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync(new Dictionary<string, string?> { ["MaxRevocationEntries"] = "3", ["RevocationPruneMargin"] = "01:00:00" });
        var operatorCaller = Caller.Operator(kit.Identity.Identifier);

        var shortLived = new List<CredentialChain>();
        for (var i = 0; i < 2; i++)
        {
            shortLived.Add(await kit.EnrollAsync(await kit.CreateAgentAsync(), $"user:short{i}", ["role=worker"], lifetime: TimeSpan.FromMinutes(10)));
        }

        var longLived = await kit.EnrollAsync(await kit.CreateAgentAsync(), "user:long", ["role=worker"], lifetime: TimeSpan.FromHours(20));
        var late = await kit.EnrollAsync(await kit.CreateAgentAsync(), "user:late", ["role=worker"], lifetime: TimeSpan.FromHours(20));
        var last = await kit.EnrollAsync(await kit.CreateAgentAsync(), "user:last", ["role=worker"], lifetime: TimeSpan.FromHours(20));
        foreach (var chain in shortLived.Append(longLived))
        {
            await kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForCredential(chain.Leaf.Credential.Id), "gone");
        }

        // Full, and nothing expired yet: refused, and the list is as it was.
        var full = await Assert.ThrowsAsync<AuthorityException>(() => kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForCredential(late.Leaf.Credential.Id), "too soon"));
        Assert.Equal(AuthorityErrorCode.OutOfRange, full.Code);
        Assert.Equal(3, kit.Service.CurrentRevocations!.List.Entries.Length);

        // The short-lived credentials expired, but not yet past the margin: still refused.
        kit.Time.Advance(TimeSpan.FromMinutes(30));
        await Assert.ThrowsAsync<AuthorityException>(() => kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForCredential(late.Leaf.Credential.Id), "still too soon"));

        // Past the margin: their entries make room; the long-lived one stays listed.
        kit.Time.Advance(TimeSpan.FromHours(1));
        var sequence = await kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForCredential(late.Leaf.Credential.Id), "now");
        var published = kit.Service.CurrentRevocations!;
        Assert.Equal(sequence, published.List.Sequence);
        var listed = published.List.Entries.Select(e => Convert.ToHexString(e.Value)).ToHashSet();
        Assert.Equal(2, listed.Count);
        Assert.Contains(Convert.ToHexString(longLived.Leaf.Credential.Id), listed);
        Assert.Contains(Convert.ToHexString(late.Leaf.Credential.Id), listed);
        Assert.NotNull(published.List.FindRevocation(longLived.Leaf.Credential));

        // A principal entry never expires and is never dropped; with it the list is full again.
        await kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForPrincipal(Principal.Parse("user:mallory")), "left");
        await Assert.ThrowsAsync<AuthorityException>(() => kit.Service.RevokeAsync(operatorCaller, RevocationEntry.ForCredential(last.Leaf.Credential.Id), "full"));
    }
}
