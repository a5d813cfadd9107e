using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using SecureChannels.Authority.Storage;

namespace SecureChannels.Authority.Tests.Storage;

/// <summary>
/// What every <see cref="IAuthorityStore"/> must do, run against each implementation by a subclass. Each test gets a
/// database of its own (the subclass makes it), so the order the tests run in does not matter.
/// </summary>
public abstract class AuthorityStoreContract : IAsyncLifetime
{
    /// <summary>How long any single awaited step may take before the test calls it a hang.</summary>
    protected static readonly TimeSpan Guard = TimeSpan.FromSeconds(60);

    /// <summary>2026-01-01T00:00:00.123Z: a whole millisecond, as stored values are.</summary>
    protected static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_767_225_600_123);

    private readonly List<IAuthorityStore> _stores = [];

    /// <summary>Strings a client could send: SQL fragments, quotes, NUL, controls, emoji, bidi, a long one.</summary>
    private static readonly string[] HostileStrings =
    [
        "",
        "a",
        "a\0",
        "a\0b",
        "\0",
        "\0\0trailing\0",
        "'",
        "''",
        "\"",
        "'; DROP TABLE credentials; --",
        "\" OR 1=1 --",
        "x' OR 'x'='x",
        "\u0001\u0002\u0007\b\t\n\v\f\r\u001b\u001f\u007f\u0085",
        "\\",
        "\\0\\x00",
        "%_*?[]^$.",
        "$1 @id :id ? @principal",
        "🔐👩‍💻🏳️‍🌈",
        "\u202Eevil\u202C",
        "é vs e\u0301",
        "\uFEFFbom",
        "\uFFFF\uFFFE",
        "日本語テキスト",
        new string('x', 100_000),
    ];

    /// <summary>Strings UTF-8 cannot carry (as indexes too: a test runner would itself replace them when passing them as data).</summary>
    private static readonly string[] LoneSurrogates = ["\uD800", "a\uDC00b", "end\uDBFF", "\uDC00\uD800"];

    /// <summary>The indexes of <see cref="LoneSurrogates"/>.</summary>
    public static TheoryData<int> LoneSurrogateCases => [.. Enumerable.Range(0, LoneSurrogates.Length)];

    /// <summary>The indexes of <see cref="HostileStrings"/> (indexes keep the test names readable).</summary>
    public static TheoryData<int> HostileStringCases => [.. Enumerable.Range(0, HostileStrings.Length)];

    /// <summary>A new store instance on this test's database (not initialized).</summary>
    protected abstract Task<IAuthorityStore> CreateStoreAsync();

    /// <summary>A store whose database cannot be reached.</summary>
    protected abstract IAuthorityStore CreateUnreachableStore();

    /// <summary>Prepares this test's database.</summary>
    public virtual Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Disposes every store the test opened; subclasses then remove the test's database.</summary>
    public virtual async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }
    }

    /// <summary>A new store on this test's database, disposed with the test.</summary>
    protected async Task<IAuthorityStore> OpenStoreAsync(bool initialize = true)
    {
        var store = Track(await CreateStoreAsync());
        if (initialize)
        {
            await store.InitializeAsync().WaitAsync(Guard);
        }

        return store;
    }

    /// <summary>Disposes <paramref name="store"/> with the test.</summary>
    protected T Track<T>(T store)
        where T : IAuthorityStore
    {
        _stores.Add(store);
        return store;
    }

    [Fact]
    public async Task Initializing_twice_keeps_the_schema_and_the_data()
    {
        var store = await OpenStoreAsync();
        await WriteAsync(store, tx => tx.InsertTicketAsync(Ticket(1)));

        await store.InitializeAsync();

        var again = await OpenStoreAsync();
        await using var read = await again.BeginAsync(write: false);
        Assert.NotNull(await read.FindTicketAsync(Id(1)));
    }

    [Fact]
    public async Task Several_instances_initializing_one_database_at_once_all_succeed()
    {
        var stores = new List<IAuthorityStore>();
        for (var i = 0; i < 6; i++)
        {
            stores.Add(await OpenStoreAsync(initialize: false));
        }

        await Task.WhenAll(stores.Select(s => Task.Run(() => s.InitializeAsync()))).WaitAsync(Guard);

        await WriteAsync(stores[0], tx => tx.InsertTicketAsync(Ticket(1)));
        foreach (var store in stores)
        {
            await using var read = await store.BeginAsync(write: false);
            Assert.NotNull(await read.FindTicketAsync(Id(1)));
        }
    }

    [Fact]
    public async Task A_ticket_round_trips_and_an_unknown_id_finds_nothing()
    {
        var store = await OpenStoreAsync();
        var ticket = Ticket(1);
        await WriteAsync(store, tx => tx.InsertTicketAsync(ticket));

        await using var read = await store.BeginAsync(write: false);
        AssertTicket(ticket, await read.FindTicketAsync(Id(1)));
        Assert.Null(await read.FindTicketAsync(Id(2)));
        Assert.Null(await read.FindTicketAsync([]));
    }

    [Fact]
    public async Task A_ticket_is_marked_used_once()
    {
        var store = await OpenStoreAsync();
        await WriteAsync(store, tx => tx.InsertTicketAsync(Ticket(1)));

        await using (var tx = await store.BeginAsync(write: true))
        {
            Assert.True(await tx.MarkTicketUsedAsync(Id(1), "sc1:first", T0.AddMinutes(1)));
            Assert.False(await tx.MarkTicketUsedAsync(Id(1), "sc1:second", T0.AddMinutes(2)));
            Assert.False(await tx.MarkTicketUsedAsync(Id(9), "sc1:nobody", T0));
            await tx.CommitAsync();
        }

        await using (var tx = await store.BeginAsync(write: true))
        {
            Assert.False(await tx.MarkTicketUsedAsync(Id(1), "sc1:later", T0.AddMinutes(3)));
            await tx.CommitAsync();
        }

        await using var read = await store.BeginAsync(write: false);
        AssertTicket(Ticket(1) with { UsedBy = "sc1:first", UsedAt = T0.AddMinutes(1) }, await read.FindTicketAsync(Id(1)));
    }

    [Fact]
    public async Task Of_concurrent_marks_from_separate_transactions_exactly_one_wins()
    {
        var store = await OpenStoreAsync();
        await WriteAsync(store, tx => tx.InsertTicketAsync(Ticket(1)));

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var racers = Enumerable.Range(0, 10).Select(i => Task.Run(async () =>
        {
            await go.Task;
            await using var tx = await store.BeginAsync(write: true);
            var won = await tx.MarkTicketUsedAsync(Id(1), $"sc1:racer-{i}", T0.AddSeconds(i));
            await tx.CommitAsync();
            return won;
        })).ToArray();
        go.SetResult();
        var results = await Task.WhenAll(racers).WaitAsync(Guard);

        var winner = Assert.Single(Enumerable.Range(0, results.Length), i => results[i]);
        await using var read = await store.BeginAsync(write: false);
        var ticket = await read.FindTicketAsync(Id(1));
        Assert.Equal($"sc1:racer-{winner}", ticket?.UsedBy);
        Assert.Equal(T0.AddSeconds(winner), ticket?.UsedAt);
    }

    [Fact]
    public async Task Committed_changes_are_visible_and_disposed_ones_leave_nothing()
    {
        var store = await OpenStoreAsync();

        await using (var tx = await store.BeginAsync(write: true))
        {
            await WriteOneOfEachAsync(tx, 1);

            // Disposed without a commit: rolled back.
        }

        await using (var read = await store.BeginAsync(write: false))
        {
            Assert.Null(await read.FindTicketAsync(Id(1)));
            Assert.Null(await read.FindCredentialAsync(Id(1)));
            Assert.Null(await read.LatestDocumentAsync("policy", "p1"));
            Assert.Null(await read.LastAuditAsync());
        }

        await using (var tx = await store.BeginAsync(write: true))
        {
            await WriteOneOfEachAsync(tx, 1);
            await tx.CommitAsync();
        }

        await using (var read = await store.BeginAsync(write: false))
        {
            Assert.NotNull(await read.FindTicketAsync(Id(1)));
            Assert.NotNull(await read.FindCredentialAsync(Id(1)));
            Assert.NotNull(await read.LatestDocumentAsync("policy", "p1"));
            Assert.Equal(1, (await read.LastAuditAsync())?.Sequence);
        }
    }

    [Fact]
    public async Task A_read_transaction_sees_one_snapshot_and_never_blocks_the_writer()
    {
        var store = await OpenStoreAsync();
        await using var write = await store.BeginAsync(write: true);
        await write.InsertTicketAsync(Ticket(1));

        await using var read = await store.BeginAsync(write: false).WaitAsync(Guard);
        Assert.Null(await read.FindTicketAsync(Id(1)).WaitAsync(Guard));

        await write.CommitAsync().WaitAsync(Guard);

        // Still the snapshot taken by the first read.
        Assert.Null(await read.FindTicketAsync(Id(1)));
        await read.CommitAsync();

        await using var later = await store.BeginAsync(write: false);
        Assert.NotNull(await later.FindTicketAsync(Id(1)));
    }

    [Fact]
    public async Task Credentials_are_found_by_id_parent_principal_at_a_time_and_subject()
    {
        var store = await OpenStoreAsync();
        var root = Credential(0x30, parent: null, subject: "sc1:alice", principal: "org:acme", T0, T0.AddHours(1));
        var childB = Credential(0x32, parent: 0x30, subject: "sc1:bob", principal: "org:acme", T0, T0.AddMinutes(30));
        var childA = Credential(0x31, parent: 0x30, subject: "sc1:alice", principal: "org:acme", T0.AddMinutes(10), T0.AddMinutes(20));
        var grandchild = Credential(0x33, parent: 0x32, subject: "sc1:carol", principal: "org:acme", T0, T0.AddMinutes(5));
        var other = Credential(0x20, parent: null, subject: "sc1:alice", principal: "org:other", T0, T0.AddHours(1));
        await WriteAsync(store, async tx =>
        {
            // Inserted out of id order, so the ordering below is the store's doing.
            foreach (var credential in new[] { grandchild, childB, root, childA, other })
            {
                await tx.InsertCredentialAsync(credential);
            }
        });

        await using var read = await store.BeginAsync(write: false);
        AssertCredential(root, await read.FindCredentialAsync(Id(0x30)));
        AssertCredential(childA, await read.FindCredentialAsync(Id(0x31)));
        Assert.Null(await read.FindCredentialAsync(Id(0x99)));

        Assert.Equal("31 32", Ids(await read.FindChildrenAsync(Id(0x30))));
        Assert.Equal("33", Ids(await read.FindChildrenAsync(Id(0x32))));
        Assert.Empty(await read.FindChildrenAsync(Id(0x33)));

        Assert.Equal("30 32 33", Ids(await read.FindByPrincipalAsync("org:acme", T0)));
        Assert.Equal("30 31 32", Ids(await read.FindByPrincipalAsync("org:acme", T0.AddMinutes(10))));
        Assert.Equal("30 32", Ids(await read.FindByPrincipalAsync("org:acme", T0.AddMinutes(20))));
        Assert.Equal("30", Ids(await read.FindByPrincipalAsync("org:acme", T0.AddHours(1).AddTicks(-1))));
        Assert.Empty(await read.FindByPrincipalAsync("org:acme", T0.AddHours(1)));
        Assert.Empty(await read.FindByPrincipalAsync("org:acme", T0.AddTicks(-1)));
        Assert.Equal("20", Ids(await read.FindByPrincipalAsync("org:other", T0)));
        Assert.Empty(await read.FindByPrincipalAsync("org:nobody", T0));

        Assert.Equal("20 30 31", Ids(await read.FindBySubjectAsync("sc1:alice")));
        Assert.Equal("33", Ids(await read.FindBySubjectAsync("sc1:carol")));
        Assert.Empty(await read.FindBySubjectAsync("sc1:ALICE"));
    }

    [Fact]
    public async Task A_duplicate_credential_id_is_a_conflict_and_rolls_its_transaction_back()
    {
        var store = await OpenStoreAsync();
        var first = Credential(1, null, "sc1:alice", "org:acme", T0, T0.AddHours(1));
        await WriteAsync(store, tx => tx.InsertCredentialAsync(first));

        await using (var tx = await store.BeginAsync(write: true))
        {
            await tx.InsertTicketAsync(Ticket(7));
            var e = await Assert.ThrowsAsync<AuthorityStoreException>(
                () => tx.InsertCredentialAsync(first with { Subject = "sc1:mallory" }));
            Assert.Equal(AuthorityStoreErrorKind.Conflict, e.Kind);
            await Assert.ThrowsAsync<InvalidOperationException>(() => tx.CommitAsync());
        }

        await using (var tx = await store.BeginAsync(write: true))
        {
            await tx.InsertCredentialAsync(Credential(2, null, "sc1:bob", "org:acme", T0, T0.AddHours(1)));
            var e = await Assert.ThrowsAsync<AuthorityStoreException>(
                () => tx.InsertCredentialAsync(Credential(2, null, "sc1:bob", "org:acme", T0, T0.AddHours(1))));
            Assert.Equal(AuthorityStoreErrorKind.Conflict, e.Kind);
        }

        await using var read = await store.BeginAsync(write: false);
        AssertCredential(first, await read.FindCredentialAsync(Id(1)));
        Assert.Null(await read.FindCredentialAsync(Id(2)));
        Assert.Null(await read.FindTicketAsync(Id(7)));
    }

    [Fact]
    public async Task A_duplicate_ticket_id_is_a_conflict()
    {
        var store = await OpenStoreAsync();
        await WriteAsync(store, tx => tx.InsertTicketAsync(Ticket(1)));

        await using var tx = await store.BeginAsync(write: true);
        var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => tx.InsertTicketAsync(Ticket(1) with { Principal = "org:other" }));
        Assert.Equal(AuthorityStoreErrorKind.Conflict, e.Kind);
    }

    [Fact]
    public async Task Documents_give_the_latest_version_per_kind_and_resource_and_a_version_is_written_once()
    {
        var store = await OpenStoreAsync();
        await WriteAsync(store, async tx =>
        {
            await tx.InsertDocumentAsync(Document("policy", "b", 1));
            await tx.InsertDocumentAsync(Document("policy", "a", 3));
            await tx.InsertDocumentAsync(Document("policy", "a", 1));
            await tx.InsertDocumentAsync(Document("policy", "a", 2));
            await tx.InsertDocumentAsync(Document("policy", "é", 1));
            await tx.InsertDocumentAsync(Document("policy", "Z", 5));
            await tx.InsertDocumentAsync(Document("revocations", "", 1));
            await tx.InsertDocumentAsync(Document("revocations", "", 2));
        });

        await using (var read = await store.BeginAsync(write: false))
        {
            AssertDocument(Document("policy", "a", 3), await read.LatestDocumentAsync("policy", "a"));
            AssertDocument(Document("policy", "b", 1), await read.LatestDocumentAsync("policy", "b"));
            AssertDocument(Document("revocations", "", 2), await read.LatestDocumentAsync("revocations", ""));
            Assert.Null(await read.LatestDocumentAsync("policy", "missing"));
            Assert.Null(await read.LatestDocumentAsync("revocations", "a"));

            // Ordered by code point, not by a locale: "Z" < "a" < "b" < "é".
            var latest = await read.LatestDocumentsAsync("policy");
            Assert.Equal(["Z/5", "a/3", "b/1", "é/1"], latest.Select(d => $"{d.Resource}/{d.Version}"));
            AssertDocument(Document("policy", "a", 3), latest[1]);
            Assert.Single(await read.LatestDocumentsAsync("revocations"));
            Assert.Empty(await read.LatestDocumentsAsync("nothing"));
        }

        await using (var tx = await store.BeginAsync(write: true))
        {
            var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => tx.InsertDocumentAsync(Document("policy", "a", 2)));
            Assert.Equal(AuthorityStoreErrorKind.Conflict, e.Kind);
        }

        await using (var tx = await store.BeginAsync(write: true))
        {
            // The same version under another resource or kind is a different document.
            await tx.InsertDocumentAsync(Document("policy", "c", 2));
            await tx.InsertDocumentAsync(Document("other", "a", 2));
            await tx.CommitAsync();
        }
    }

    [Fact]
    public async Task Audit_records_append_in_order_and_read_by_range()
    {
        var store = await OpenStoreAsync();
        var chain = new List<AuditRecord>();
        await using (var read = await store.BeginAsync(write: false))
        {
            Assert.Null(await read.LastAuditAsync());
            Assert.Empty(await read.ReadAuditAsync(1, 10));
        }

        for (var i = 0; i < 5; i++)
        {
            await using var tx = await store.BeginAsync(write: true);
            var record = NextAudit(await tx.LastAuditAsync(), $"sc1:actor-{i}");
            await tx.AppendAuditAsync(record);
            await tx.CommitAsync();
            chain.Add(record);
        }

        await using (var read = await store.BeginAsync(write: false))
        {
            AssertAudit(chain[4], await read.LastAuditAsync());
            var all = await read.ReadAuditAsync(1, 100);
            Assert.Equal(5, all.Count);
            for (var i = 0; i < 5; i++)
            {
                AssertAudit(chain[i], all[i]);
            }

            Assert.Equal([2L, 3L], (await read.ReadAuditAsync(2, 2)).Select(r => r.Sequence));
            Assert.Equal([5L], (await read.ReadAuditAsync(5, 10)).Select(r => r.Sequence));
            Assert.Equal([1L, 2L], (await read.ReadAuditAsync(long.MinValue, 2)).Select(r => r.Sequence));
            Assert.Empty(await read.ReadAuditAsync(6, 10));
            Assert.Empty(await read.ReadAuditAsync(1, 0));
            await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => read.ReadAuditAsync(1, -1));
        }
    }

    [Fact]
    public async Task An_audit_record_out_of_sequence_is_a_conflict()
    {
        var store = await OpenStoreAsync();
        var first = NextAudit(null, "sc1:admin");
        await using (var tx = await store.BeginAsync(write: true))
        {
            var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => tx.AppendAuditAsync(first with { Sequence = 2 }));
            Assert.Equal(AuthorityStoreErrorKind.Conflict, e.Kind);
        }

        await using (var tx = await store.BeginAsync(write: true))
        {
            var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => tx.AppendAuditAsync(first with { Sequence = 0 }));
            Assert.Equal(AuthorityStoreErrorKind.Conflict, e.Kind);
        }

        await WriteAsync(store, tx => tx.AppendAuditAsync(first));
        var second = NextAudit(first, "sc1:admin");
        foreach (var wrong in new[] { 1L, 3L, 100L, -1L })
        {
            await using var tx = await store.BeginAsync(write: true);
            var e = await Assert.ThrowsAsync<AuthorityStoreException>(() => tx.AppendAuditAsync(second with { Sequence = wrong }));
            Assert.Equal(AuthorityStoreErrorKind.Conflict, e.Kind);
        }

        await WriteAsync(store, tx => tx.AppendAuditAsync(second));
        await using var read = await store.BeginAsync(write: false);
        Assert.Equal([1L, 2L], (await read.ReadAuditAsync(1, 10)).Select(r => r.Sequence));
    }

    [Theory]
    [MemberData(nameof(HostileStringCases))]
    public async Task Hostile_strings_round_trip_exactly_and_match_only_themselves(int index)
    {
        var store = await OpenStoreAsync();
        var hostile = HostileStrings[index];

        // Every other hostile string is stored too, so a match on a prefix (cut at a NUL) or a pattern would show.
        await WriteAsync(store, async tx =>
        {
            AuditRecord? last = null;
            for (var i = 0; i < HostileStrings.Length; i++)
            {
                var s = HostileStrings[i];
                await tx.InsertTicketAsync(Ticket(i) with { Principal = s, CreatedBy = s });
                Assert.True(await tx.MarkTicketUsedAsync(Id(i), s, T0));
                await tx.InsertCredentialAsync(Credential(i, parent: null, subject: s, principal: s, T0, T0.AddHours(1)) with { Issuer = s });
                await tx.InsertDocumentAsync(Document(s, s, 1));
                last = NextAudit(last, s) with { Principal = s, Action = s, Target = s, Reason = s };
                await tx.AppendAuditAsync(last);
            }
        });

        await using var read = await store.BeginAsync(write: false);
        var ticket = await read.FindTicketAsync(Id(index));
        Assert.NotNull(ticket);
        Assert.Equal(hostile, ticket.Principal);
        Assert.Equal(hostile, ticket.CreatedBy);
        Assert.Equal(hostile, ticket.UsedBy);

        var bySubject = Assert.Single(await read.FindBySubjectAsync(hostile));
        Assert.Equal(Id(index), bySubject.Id);
        Assert.Equal(hostile, bySubject.Subject);
        Assert.Equal(hostile, bySubject.Issuer);
        Assert.Equal(hostile, bySubject.Principal);
        Assert.Equal(Id(index), Assert.Single(await read.FindByPrincipalAsync(hostile, T0)).Id);

        var document = await read.LatestDocumentAsync(hostile, hostile);
        Assert.NotNull(document);
        Assert.Equal(hostile, document.Kind);
        Assert.Equal(hostile, document.Resource);
        Assert.Equal(hostile, Assert.Single(await read.LatestDocumentsAsync(hostile)).Resource);

        var audit = Assert.Single(await read.ReadAuditAsync(index + 1, 1));
        Assert.Equal([hostile, hostile, hostile, hostile, hostile], new[] { audit.Actor, audit.Principal, audit.Action, audit.Target, audit.Reason });

        // Nothing ran as SQL: every table is whole.
        Assert.Equal(HostileStrings.Length, (await read.ReadAuditAsync(1, 1000)).Count);
        Assert.NotNull(await read.FindCredentialAsync(Id(HostileStrings.Length - 1)));
    }

    [Fact]
    public async Task Empty_and_binary_byte_arrays_round_trip()
    {
        var store = await OpenStoreAsync();
        var allBytes = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        var ticket = Ticket(1) with { Attributes = [], SecretHash = allBytes };
        var credential = Credential(2, null, "s", "p", T0, T0.AddHours(1)) with { Attributes = [], Chain = new byte[1 << 20] };
        var document = Document("k", "r", 1) with { Encoded = [] };
        await WriteAsync(store, async tx =>
        {
            await tx.InsertTicketAsync(ticket);
            await tx.InsertCredentialAsync(credential);
            await tx.InsertDocumentAsync(document);
        });

        await using var read = await store.BeginAsync(write: false);
        AssertTicket(ticket, await read.FindTicketAsync(Id(1)));
        AssertCredential(credential, await read.FindCredentialAsync(Id(2)));
        AssertDocument(document, await read.LatestDocumentAsync("k", "r"));
    }

    [Theory]
    [MemberData(nameof(LoneSurrogateCases))]
    public async Task A_lone_surrogate_is_refused_before_anything_is_written(int index)
    {
        var broken = LoneSurrogates[index];
        var store = await OpenStoreAsync();
        await using var tx = await store.BeginAsync(write: true);
        await tx.InsertTicketAsync(Ticket(1));

        await Assert.ThrowsAsync<ArgumentException>(() => tx.InsertCredentialAsync(Credential(2, null, broken, "p", T0, T0.AddHours(1))));
        await Assert.ThrowsAsync<ArgumentException>(() => tx.AppendAuditAsync(NextAudit(null, "a") with { Reason = broken }));
        await Assert.ThrowsAsync<ArgumentException>(() => tx.FindBySubjectAsync(broken));
        await Assert.ThrowsAsync<ArgumentException>(() => tx.MarkTicketUsedAsync(Id(1), broken, T0));

        // Refused up front, so the transaction is untouched and still commits.
        await tx.CommitAsync();
        await using var read = await store.BeginAsync(write: false);
        Assert.NotNull(await read.FindTicketAsync(Id(1)));
        Assert.Null(await read.FindCredentialAsync(Id(2)));
    }

    [Fact]
    public async Task Times_are_kept_to_the_millisecond_in_utc()
    {
        var store = await OpenStoreAsync();
        var local = new DateTimeOffset(2026, 5, 6, 7, 8, 9, 123, TimeSpan.FromHours(2)).AddTicks(4567);
        var before1970 = new DateTimeOffset(1969, 12, 31, 23, 59, 59, 999, TimeSpan.FromHours(-5)).AddTicks(9999);
        var ticket = Ticket(1) with { ExpiresAt = local, CreatedAt = before1970 };
        var forever = Credential(2, null, "s", "p", DateTimeOffset.MinValue, DateTimeOffset.MaxValue);
        await WriteAsync(store, async tx =>
        {
            await tx.InsertTicketAsync(ticket);
            await tx.InsertCredentialAsync(forever);
        });

        await using var read = await store.BeginAsync(write: false);
        var found = await read.FindTicketAsync(Id(1));
        Assert.NotNull(found);
        Assert.Equal(TimeSpan.Zero, found.ExpiresAt.Offset);
        Assert.Equal(new DateTimeOffset(2026, 5, 6, 5, 8, 9, 123, TimeSpan.Zero), found.ExpiresAt);
        Assert.Equal(TimeSpan.Zero, found.CreatedAt.Offset);
        Assert.Equal(new DateTimeOffset(1970, 1, 1, 4, 59, 59, 999, TimeSpan.Zero), found.CreatedAt);

        var credential = Assert.Single(await read.FindByPrincipalAsync("p", T0));
        Assert.Equal(DateTimeOffset.MinValue, credential.NotBefore);
        Assert.Equal(DateTimeOffset.MaxValue.AddTicks(-(TimeSpan.TicksPerMillisecond - 1)), credential.NotAfter);
    }

    [Fact]
    public async Task Concurrent_writers_are_serialized_and_the_audit_chain_has_no_gap()
    {
        var store = await OpenStoreAsync();
        const int Writers = 20;

        var go = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writers = Enumerable.Range(0, Writers).Select(i => Task.Run(async () =>
        {
            await go.Task;
            await using var tx = await store.BeginAsync(write: true);
            var last = await tx.LastAuditAsync();
            await tx.AppendAuditAsync(NextAudit(last, $"sc1:writer-{i}"));
            await tx.CommitAsync();
        })).ToArray();
        go.SetResult();
        await Task.WhenAll(writers).WaitAsync(Guard);

        await AssertAuditChainAsync(store, Writers, Enumerable.Range(0, Writers).Select(i => $"sc1:writer-{i}"));
    }

    [Fact]
    public async Task A_writer_waiting_for_the_lock_can_be_cancelled_and_the_lock_is_not_lost()
    {
        var store = await OpenStoreAsync();
        using (var cancelled = new CancellationTokenSource())
        {
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.BeginAsync(write: true, cancelled.Token));
        }

        await using (var holder = await store.BeginAsync(write: true))
        {
            await holder.InsertTicketAsync(Ticket(1));
            using var patience = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.BeginAsync(write: true, patience.Token).WaitAsync(Guard));

            // Readers are not queued behind the writer.
            await using var read = await store.BeginAsync(write: false).WaitAsync(Guard);
            Assert.Null(await read.FindTicketAsync(Id(1)));
            await holder.CommitAsync();
        }

        await using var next = await store.BeginAsync(write: true).WaitAsync(Guard);
        Assert.True(await next.MarkTicketUsedAsync(Id(1), "sc1:after", T0));
        await next.CommitAsync();
    }

    [Fact]
    public async Task A_cancelled_operation_rolls_its_transaction_back()
    {
        var store = await OpenStoreAsync();
        await using (var tx = await store.BeginAsync(write: true))
        {
            await tx.InsertTicketAsync(Ticket(1));
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => tx.FindTicketAsync(Id(1), cancelled.Token));
            await Assert.ThrowsAsync<InvalidOperationException>(() => tx.CommitAsync());
        }

        // The writer lock was released with the rollback, and nothing was kept.
        await using var next = await store.BeginAsync(write: true).WaitAsync(Guard);
        Assert.Null(await next.FindTicketAsync(Id(1)));
    }

    [Fact]
    public async Task Changes_in_a_read_transaction_are_refused_and_reads_go_on()
    {
        var store = await OpenStoreAsync();
        await using var read = await store.BeginAsync(write: false);

        await Assert.ThrowsAsync<InvalidOperationException>(() => read.InsertTicketAsync(Ticket(1)));
        await Assert.ThrowsAsync<InvalidOperationException>(() => read.MarkTicketUsedAsync(Id(1), "x", T0));
        await Assert.ThrowsAsync<InvalidOperationException>(() => read.InsertCredentialAsync(Credential(1, null, "s", "p", T0, T0)));
        await Assert.ThrowsAsync<InvalidOperationException>(() => read.InsertDocumentAsync(Document("k", "r", 1)));
        await Assert.ThrowsAsync<InvalidOperationException>(() => read.AppendAuditAsync(NextAudit(null, "a")));

        Assert.Null(await read.FindTicketAsync(Id(1)));
        await read.CommitAsync();
    }

    [Fact]
    public async Task A_finished_transaction_refuses_further_use()
    {
        var store = await OpenStoreAsync();
        var tx = await store.BeginAsync(write: true);
        await tx.InsertTicketAsync(Ticket(1));
        await tx.CommitAsync();
        await Assert.ThrowsAsync<InvalidOperationException>(() => tx.InsertTicketAsync(Ticket(2)));
        await Assert.ThrowsAsync<InvalidOperationException>(() => tx.FindTicketAsync(Id(1)));
        await Assert.ThrowsAsync<InvalidOperationException>(() => tx.CommitAsync());
        await tx.DisposeAsync();
        await tx.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => tx.FindTicketAsync(Id(1)));

        // After a commit the writer lock is free again.
        await using var next = await store.BeginAsync(write: true).WaitAsync(Guard);
        Assert.NotNull(await next.FindTicketAsync(Id(1)));
    }

    [Fact]
    public async Task An_unreachable_database_is_unavailable_quickly_and_typed()
    {
        var store = Track(CreateUnreachableStore());

        var init = await Assert.ThrowsAsync<AuthorityStoreException>(() => store.InitializeAsync().WaitAsync(Guard));
        Assert.Equal(AuthorityStoreErrorKind.Unavailable, init.Kind);

        // Twice a writer: a failed begin must not keep the writer lock.
        foreach (var write in new[] { false, true, true })
        {
            var begin = await Assert.ThrowsAsync<AuthorityStoreException>(() => store.BeginAsync(write).WaitAsync(Guard));
            Assert.Equal(AuthorityStoreErrorKind.Unavailable, begin.Kind);
            Assert.NotNull(begin.InnerException);
        }
    }

    /// <summary>Runs <paramref name="work"/> in a write transaction and commits it.</summary>
    protected static async Task WriteAsync(IAuthorityStore store, Func<IAuthorityTransaction, Task> work)
    {
        await using var tx = await store.BeginAsync(write: true).WaitAsync(Guard);
        await work(tx);
        await tx.CommitAsync();
    }

    /// <summary>Checks the audit log holds exactly 1..<paramref name="count"/>, each chained to the one before, by these actors.</summary>
    protected static async Task AssertAuditChainAsync(IAuthorityStore store, int count, IEnumerable<string> actors)
    {
        await using var read = await store.BeginAsync(write: false);
        var records = await read.ReadAuditAsync(1, count + 10);
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), records.Select(r => r.Sequence));
        var previous = new byte[32];
        foreach (var record in records)
        {
            Assert.Equal(previous, record.PreviousHash);
            Assert.Equal(ChainHash(record.Sequence, record.PreviousHash, record.Actor), record.Hash);
            previous = record.Hash;
        }

        Assert.Equal(actors.Order(StringComparer.Ordinal), records.Select(r => r.Actor).Order(StringComparer.Ordinal));
    }

    /// <summary>A 16-byte id whose last four bytes are <paramref name="n"/>, so ids sort as their numbers do.</summary>
    protected static byte[] Id(int n)
    {
        var id = new byte[16];
        id[0] = 0xA5;
        BinaryPrimitives.WriteInt32BigEndian(id.AsSpan(12), n);
        return id;
    }

    /// <summary>An unused ticket.</summary>
    protected static TicketRecord Ticket(int n) => new(
        Id(n), SHA256.HashData(Id(n)), "org:acme", [0x81, 0xA1, 0x72], 2, 3600, T0.AddHours(1), "sc1:admin", T0, null, null);

    /// <summary>The next audit record after <paramref name="last"/>, hash-chained to it.</summary>
    protected static AuditRecord NextAudit(AuditRecord? last, string actor)
    {
        var sequence = (last?.Sequence ?? 0) + 1;
        var previous = last?.Hash ?? new byte[32];
        var hash = ChainHash(sequence, previous, actor);
        return new AuditRecord(sequence, T0.AddSeconds(sequence), actor, "org:acme", "issue", "target", "", previous, hash, SHA512.HashData(hash));
    }

    private static byte[] ChainHash(long sequence, byte[] previous, string actor)
    {
        var input = new byte[8 + previous.Length];
        BinaryPrimitives.WriteInt64BigEndian(input, sequence);
        previous.CopyTo(input, 8);
        return SHA256.HashData([.. input, .. Encoding.UTF8.GetBytes(actor)]);
    }

    private static CredentialRecord Credential(int n, int? parent, string subject, string principal, DateTimeOffset notBefore, DateTimeOffset notAfter) => new(
        Id(n), parent is { } p ? Id(p) : null, "sc1:authority", subject, principal, [0x80], notBefore, notAfter, [.. Id(n), .. Id(n)], T0);

    private static StoredDocument Document(string kind, string resource, long version) =>
        new(kind, resource, version, Encoding.UTF8.GetBytes($"{kind}|{resource}|{version}"), T0.AddMinutes(version));

    private static async Task WriteOneOfEachAsync(IAuthorityTransaction tx, int n)
    {
        await tx.InsertTicketAsync(Ticket(n));
        await tx.InsertCredentialAsync(Credential(n, null, "sc1:alice", "org:acme", T0, T0.AddHours(1)));
        await tx.InsertDocumentAsync(Document("policy", "p1", 1));
        await tx.AppendAuditAsync(NextAudit(null, "sc1:admin"));
    }

    /// <summary>The credentials' numbers (see <see cref="Id"/>) in hex, in the order given: "30 31".</summary>
    private static string Ids(IEnumerable<CredentialRecord> credentials) =>
        string.Join(' ', credentials.Select(c => BinaryPrimitives.ReadInt32BigEndian(c.Id.AsSpan(12)).ToString("x", CultureInfo.InvariantCulture)));

    // Field by field rather than Assert.Equivalent: that walks a large byte array element by element by reflection.
    private static void AssertTicket(TicketRecord expected, TicketRecord? actual)
    {
        Assert.NotNull(actual);
        AssertBytes(expected.Id, actual.Id, "Id");
        AssertBytes(expected.SecretHash, actual.SecretHash, "SecretHash");
        Assert.Equal(expected.Principal, actual.Principal);
        AssertBytes(expected.Attributes, actual.Attributes, "Attributes");
        Assert.Equal(expected.MaxDelegationDepth, actual.MaxDelegationDepth);
        Assert.Equal(expected.CredentialLifetimeSeconds, actual.CredentialLifetimeSeconds);
        AssertTime(expected.ExpiresAt, actual.ExpiresAt);
        Assert.Equal(expected.CreatedBy, actual.CreatedBy);
        AssertTime(expected.CreatedAt, actual.CreatedAt);
        Assert.Equal(expected.UsedBy, actual.UsedBy);
        Assert.Equal(expected.UsedAt.HasValue, actual.UsedAt.HasValue);
        if (expected.UsedAt is { } usedAt)
        {
            AssertTime(usedAt, actual.UsedAt!.Value);
        }
    }

    private static void AssertCredential(CredentialRecord expected, CredentialRecord? actual)
    {
        Assert.NotNull(actual);
        AssertBytes(expected.Id, actual.Id, "Id");
        Assert.Equal(expected.ParentId is null, actual.ParentId is null);
        if (expected.ParentId is not null)
        {
            AssertBytes(expected.ParentId, actual.ParentId!, "ParentId");
        }

        Assert.Equal(expected.Issuer, actual.Issuer);
        Assert.Equal(expected.Subject, actual.Subject);
        Assert.Equal(expected.Principal, actual.Principal);
        AssertBytes(expected.Attributes, actual.Attributes, "Attributes");
        AssertTime(expected.NotBefore, actual.NotBefore);
        AssertTime(expected.NotAfter, actual.NotAfter);
        AssertBytes(expected.Chain, actual.Chain, "Chain");
        AssertTime(expected.RecordedAt, actual.RecordedAt);
    }

    private static void AssertDocument(StoredDocument expected, StoredDocument? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Kind, actual.Kind);
        Assert.Equal(expected.Resource, actual.Resource);
        Assert.Equal(expected.Version, actual.Version);
        AssertBytes(expected.Encoded, actual.Encoded, "Encoded");
        AssertTime(expected.PublishedAt, actual.PublishedAt);
    }

    private static void AssertAudit(AuditRecord expected, AuditRecord? actual)
    {
        Assert.NotNull(actual);
        Assert.Equal(expected.Sequence, actual.Sequence);
        AssertTime(expected.At, actual.At);
        Assert.Equal(expected.Actor, actual.Actor);
        Assert.Equal(expected.Principal, actual.Principal);
        Assert.Equal(expected.Action, actual.Action);
        Assert.Equal(expected.Target, actual.Target);
        Assert.Equal(expected.Reason, actual.Reason);
        AssertBytes(expected.PreviousHash, actual.PreviousHash, "PreviousHash");
        AssertBytes(expected.Hash, actual.Hash, "Hash");
        AssertBytes(expected.Signature, actual.Signature, "Signature");
    }

    private static void AssertBytes(byte[] expected, byte[] actual, string field)
    {
        if (!expected.AsSpan().SequenceEqual(actual))
        {
            Assert.Fail($"{field}: expected {expected.Length} bytes {Convert.ToHexString(expected.AsSpan(0, Math.Min(32, expected.Length)))}…, " +
                $"got {actual.Length} bytes {Convert.ToHexString(actual.AsSpan(0, Math.Min(32, actual.Length)))}…");
        }
    }

    /// <summary>The same instant, and always offset zero.</summary>
    private static void AssertTime(DateTimeOffset expected, DateTimeOffset actual)
    {
        Assert.Equal(expected, actual);
        Assert.Equal(TimeSpan.Zero, actual.Offset);
    }
}
