//! Chinese names, real region codes and institutions for the synthetic city.

/// Common surnames.
pub const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "肖", "田", "董", "袁", "潘", "于", "蒋", "蔡",
];

/// Characters used in given names.
pub const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "秀", "英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
    "涛", "明", "超", "霞", "平", "刚", "桂", "华", "建", "国", "文", "辉", "玲", "鹏", "红", "兰",
    "春", "梅", "海", "波", "宇", "浩", "欣", "佳",
];

/// (region code, name, prefecture) of the city's districts and counties.
pub const REGIONS: &[(&str, &str)] = &[
    ("410102", "郑州市中原区"),
    ("410105", "郑州市金水区"),
    ("410122", "中牟县"),
    ("410184", "新郑市"),
    ("512002", "资阳市雁江区"),
    ("512021", "安岳县"),
    ("110105", "北京市朝阳区"),
];

/// A region the generated policy has no standard for (its households are rejected).
pub const REGION_WITHOUT_POLICY: &str = "460106";

/// Banks and other institutions.
pub const BANKS: &[&str] = &[
    "中国工商银行",
    "中国农业银行",
    "中国银行",
    "中国建设银行",
    "邮储银行",
    "郑州银行",
    "农村信用社",
];

/// Employers and payers.
pub const EMPLOYERS: &[&str] = &[
    "宇通客车",
    "富士康科技",
    "郑州市第一人民医院",
    "新郑市城市管理局",
    "安岳县供销社",
    "资阳市建筑公司",
    "朝阳区物业公司",
];

/// Street names for addresses.
pub const STREETS: &[&str] = &[
    "人民路",
    "建设路",
    "解放路",
    "文化路",
    "中山路",
    "黄河路",
    "金水路",
    "雁江大道",
];
