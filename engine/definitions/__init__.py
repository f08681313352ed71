"""Process definitions: reading uploaded BPMN/DMN safely and every deploy-time check (`bundle`), deploy,
versions and pinned loading (`store`), the element-level diff of two versions (`diff`), task forms (`forms`).
May import `execution` and `store`.
"""
