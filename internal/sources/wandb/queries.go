package wandb

import "fmt"

// The GraphQL operations registrywatch sends. They are checked against the
// W&B schema reconstructed in the fixtures (queries_test.go). Every version of
// a collection comes nested in the collection listing, so an unchanged
// registry of N collections costs ceil(N/collectionsPerPage) requests; only a
// collection with more than membershipsPerPage versions (or alias actions)
// needs follow-up pages of its own.

// Operation names, as they appear in errors.
const (
	opOrgEntity        = "OrgEntity"
	opProbeHistory     = "ProbeActionHistory"
	opCollections      = "Collections"
	opMemberships      = "CollectionMemberships"
	opAliasActions     = "CollectionAliasActions"
	collectionsPerPage = 100
	membershipsPerPage = 100
	actionsPerPage     = 100
)

const queryOrgEntity = `query OrgEntity($org: String!) {
  organization(name: $org) {
    id
    name
    orgEntity {
      id
      name
    }
  }
}`

// queryProbeHistory fails validation with `Cannot query field
// "aliasActionHistory"` on a server without action history.
const queryProbeHistory = `query ProbeActionHistory($id: ID!) {
  artifactCollection(id: $id) {
    id
    aliasActionHistory(first: 1) {
      pageInfo {
        hasNextPage
      }
    }
  }
}`

// probeCollectionID is a well-formed collection ID that names no collection.
const probeCollectionID = "QXJ0aWZhY3RDb2xsZWN0aW9uOjA=" // base64("ArtifactCollection:0")

const fragmentMembership = `
fragment RWMembership on ArtifactCollectionMembership {
  id
  versionIndex
  createdAt
  aliases {
    alias
  }
  artifact {
    id
    digest
    description
    metadata
    state
    createdAt
    updatedAt
    versionIndex
    tags {
      name
    }
    artifactSequence {
      name
      project {
        name
        entity {
          name
        }
      }
    }
    createdBy {
      __typename
      ... on Run {
        name
        user {
          username
        }
      }
      ... on User {
        username
      }
    }
  }
}

fragment RWPageInfo on PageInfo {
  endCursor
  hasNextPage
}`

const fragmentAliasAction = `
fragment RWAliasAction on ArtifactAliasAction {
  actionType
  alias
  createdAt
  user {
    username
    name
  }
  sourceArtifact {
    id
  }
  targetArtifact {
    id
  }
}`

const collectionsHead = `query Collections($entity: String!, $project: String!, $cursor: String, $perPage: Int!, $versionsPerPage: Int!%s) {
  project(entityName: $entity, name: $project) {
    id
    name
    artifactCollections(after: $cursor, first: $perPage, collectionTypes: [PORTFOLIO]) {
      pageInfo {
        ...RWPageInfo
      }
      edges {
        node {
          __typename
          id
          name
          description
          createdAt
          updatedAt
          state
          defaultArtifactType {
            name
          }
          tags {
            edges {
              node {
                name
              }
            }
          }
          artifactMemberships(first: $versionsPerPage) {
            pageInfo {
              ...RWPageInfo
            }
            edges {
              node {
                ...RWMembership
              }
            }
          }%s
        }
      }
    }
  }
}
`

const historySelection = `
          aliasActionHistory(first: $actionsPerPage) {
            pageInfo {
              ...RWPageInfo
            }
            edges {
              node {
                ...RWAliasAction
              }
            }
          }`

// queryCollections lists the collections of one project with their first
// page of versions; queryCollectionsHistory adds their first page of alias
// actions.
var (
	queryCollections        = fmt.Sprintf(collectionsHead, "", "") + fragmentMembership
	queryCollectionsHistory = fmt.Sprintf(collectionsHead, ", $actionsPerPage: Int!", historySelection) +
		fragmentMembership + fragmentAliasAction
)

const queryMemberships = `query CollectionMemberships($id: ID!, $cursor: String, $perPage: Int!) {
  artifactCollection(id: $id) {
    id
    artifactMemberships(after: $cursor, first: $perPage) {
      pageInfo {
        ...RWPageInfo
      }
      edges {
        node {
          ...RWMembership
        }
      }
    }
  }
}
` + fragmentMembership

const queryAliasActions = `query CollectionAliasActions($id: ID!, $cursor: String, $perPage: Int!) {
  artifactCollection(id: $id) {
    id
    aliasActionHistory(after: $cursor, first: $perPage) {
      pageInfo {
        endCursor
        hasNextPage
      }
      edges {
        node {
          ...RWAliasAction
        }
      }
    }
  }
}
` + fragmentAliasAction
