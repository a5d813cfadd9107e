using Microsoft.Data.Sqlite;
using SecureChannels.Authority.Audit;
using SecureChannels.Authority.Issuance;
using SecureChannels.Protocol.Credentials;

namespace SecureChannels.Authority.Tests.Service;

public sealed class AuditTamperTests
{
    [Fact]
    public async Task Every_change_of_authority_is_audited_and_an_edited_record_in_the_database_is_detected()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        var agent = await kit.CreateAgentAsync();
        await kit.EnrollAsync(agent, "user:alice", ["role=worker"]);
        await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForPrincipal(Principal.Parse("user:mallory")), "suspicious");
        await kit.Service.PublishPolicyAsync(Caller.Operator(kit.Identity.Identifier), "billing", "subject.role == \"worker\"");

        var records = await kit.Service.ReadAuditAsync(1, 100);
        Assert.Equal(["ticket", "enroll", "revoke", "policy"], records.Select(r => r.Action));
        Assert.Equal(agent.Identifier.ToString(), records[1].Actor);
        Assert.Equal("user:alice", records[1].Principal);
        Assert.Equal("suspicious", records[2].Reason);
        var intact = await kit.Service.VerifyAuditAsync();
        Assert.True(intact.IsIntact);
        Assert.Equal(4, intact.RecordsChecked);

        // Someone with database access rewrites why a revocation happened.
        using (var connection = new SqliteConnection($"Data Source={kit.DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var update = connection.CreateCommand();
            update.CommandText = "UPDATE audit SET reason = 'routine' WHERE sequence = 3";
            Assert.Equal(1, update.ExecuteNonQuery());
        }

        var tampered = await kit.Service.VerifyAuditAsync();
        Assert.False(tampered.IsIntact);
        Assert.Equal(3, tampered.FirstBadSequence);
        Assert.Equal(AuditFailureKind.HashMismatch, tampered.Failure);
    }

    [Fact]
    public async Task A_removed_record_is_detected()
    {
        await using var kit = await AuthorityTestKit.CreateAsync();
        await kit.StartAsync();
        for (var i = 0; i < 3; i++)
        {
            await kit.Service.RevokeAsync(Caller.Operator(kit.Identity.Identifier), RevocationEntry.ForPrincipal(new Principal(PrincipalKind.User, $"u{i}")), $"r{i}");
        }

        using (var connection = new SqliteConnection($"Data Source={kit.DatabasePath};Pooling=False"))
        {
            connection.Open();
            using var delete = connection.CreateCommand();
            delete.CommandText = "DELETE FROM audit WHERE sequence = 2";
            Assert.Equal(1, delete.ExecuteNonQuery());
        }

        var result = await kit.Service.VerifyAuditAsync();
        Assert.False(result.IsIntact);
        Assert.Equal(AuditFailureKind.SequenceGap, result.Failure);
    }
}
